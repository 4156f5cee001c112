package dev.sa2va.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.core.Torch;
import dev.sa2va.io.ImageFiles;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.zip.GZIPOutputStream;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Each layout is built in a temporary folder with the datasets' real file names and types, from synthetic samples
 * whose pixels are known, and read back.
 */
class VesselDatasetsTest {
    static final SyntheticFundus.Config CFG = SyntheticFundus.Config.defaults().withSize(72, 64);
    static Sample a;
    static Sample b;

    @TempDir
    Path dir;

    @BeforeAll
    static void samples() {
        SyntheticSource s = new SyntheticSource(CFG, 3, 2);
        a = s.load(0);
        b = s.load(1);
        assertTrue(a.foregroundPixels() > 50 && b.foregroundPixels() > 50, "masks worth comparing");
    }

    static void write(Tensor rgbOrMask, Path f) throws IOException {
        ImageFiles.write(rgbOrMask.dim() == 3 ? ImageFiles.rgbImage(rgbOrMask) : ImageFiles.maskImage(rgbOrMask), f);
    }

    /** Binary PPM (P6) of an RGB tensor, or PGM-in-PPM (P6, gray copied to 3 channels) of a 0/1 mask at 0/255. */
    static byte[] ppm(Tensor t) throws IOException {
        int h = (int) t.size(0), w = (int) t.size(1);
        byte[] src = Torch.toBytes(t);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(("P6\n# test\n" + w + " " + h + "\n255\n").getBytes(StandardCharsets.US_ASCII));
        for (int i = 0; i < w * h; i++) {
            for (int c = 0; c < 3; c++) {
                out.write(t.dim() == 3 ? src[3 * i + c] : (src[i] != 0 ? 255 : 0));
            }
        }
        return out.toByteArray();
    }

    static void gz(byte[] data, Path f) throws IOException {
        Files.createDirectories(f.getParent());
        try (OutputStream o = new GZIPOutputStream(Files.newOutputStream(f))) {
            o.write(data);
        }
    }

    static void assertSamePixels(Sample want, Sample got, boolean exactImage) {
        assertArrayEquals(Torch.toBytes(want.mask()), Torch.toBytes(got.mask()), "mask of " + got.id());
        if (exactImage) {
            assertArrayEquals(Torch.toBytes(want.image()), Torch.toBytes(got.image()), "image of " + got.id());
        }
    }

    @Test
    void driveWrittenByTheWriterReadsBackExactly() throws IOException {
        SyntheticSource src = new SyntheticSource(CFG, 3, 2);
        assertEquals(2, DriveLayoutWriter.write(src, dir, "test", null));
        DriveLayoutWriter.write(new SyntheticSource(CFG, 4, 1), dir, "training", null);
        assertTrue(Files.isRegularFile(dir.resolve("test/images/01_test.tif")));
        assertTrue(Files.isRegularFile(dir.resolve("test/1st_manual/02_manual1.gif")));
        assertTrue(Files.isRegularFile(dir.resolve("test/mask/02_test_mask.gif")));
        assertEquals(VesselDatasets.Layout.DRIVE, VesselDatasets.detect(dir));

        SampleSource test = VesselDatasets.open(dir, VesselDatasets.Layout.AUTO, VesselDatasets.Options.defaults());
        assertEquals(2, test.size());
        assertEquals("01_test", test.id(0));
        Sample got = test.load(0);
        assertSamePixels(a, got, true); // TIFF (LZW) and GIF are lossless
        assertArrayEquals(Torch.toBytes(a.fov()), Torch.toBytes(got.fov()));
        assertEquals(VesselDatasets.DEFAULT_TEXT, got.text());
        assertSamePixels(b, test.load(1), true);

        SampleSource all = VesselDatasets.drive(dir, VesselDatasets.Options.defaults().withSplit("all"));
        assertEquals(List.of("01_training", "01_test", "02_test"), ids(all));
        // a split folder itself works too
        assertEquals(2, VesselDatasets.drive(dir.resolve("test"), VesselDatasets.Options.defaults()).size());
        // no 2nd_manual folder: an error naming it
        IOException e = assertThrows(IOException.class,
                () -> VesselDatasets.drive(dir, VesselDatasets.Options.defaults().withAnnotator(2)));
        assertTrue(e.getMessage().contains("2nd_manual"), e.getMessage());
    }

    @Test
    void driveMissingLabelFileFailsThatSampleNamingTheFile() throws IOException {
        DriveLayoutWriter.write(new SyntheticSource(CFG, 3, 2), dir, "test", null);
        Files.delete(dir.resolve("test/1st_manual/02_manual1.gif"));
        SampleSource s = VesselDatasets.drive(dir, VesselDatasets.Options.defaults());
        assertEquals(2, s.size());
        s.load(0);
        IOException e = assertThrows(IOException.class, () -> s.load(1));
        assertTrue(e.getMessage().contains("02_manual1"), e.getMessage());
    }

    @Test
    void chaseDb1PairsImagesWithTheChosenAnnotator() throws IOException {
        Path root = dir.resolve("CHASEDB1");
        write(a.image(), root.resolve("Image_01L.jpg"));
        write(a.mask(), root.resolve("Image_01L_1stHO.png"));
        write(b.mask(), root.resolve("Image_01L_2ndHO.png"));
        write(b.image(), root.resolve("Image_01R.jpg"));
        write(b.mask(), root.resolve("Image_01R_1stHO.png"));
        write(a.mask(), root.resolve("Image_01R_2ndHO.png"));
        assertEquals(VesselDatasets.Layout.CHASE_DB1, VesselDatasets.detect(dir)); // one level below is fine
        SampleSource first = VesselDatasets.open(dir, VesselDatasets.Layout.CHASE_DB1, VesselDatasets.Options.defaults());
        assertEquals(List.of("Image_01L", "Image_01R"), ids(first));
        assertSamePixels(a, first.load(0), false); // JPEG: only the mask is exact
        assertNull(first.load(0).fov());
        SampleSource second = VesselDatasets.chaseDb1(dir, VesselDatasets.Options.defaults().withAnnotator(2));
        assertArrayEquals(Torch.toBytes(b.mask()), Torch.toBytes(second.load(0).mask()));
        // the FOV can be estimated instead
        assertNotNull(VesselDatasets.chaseDb1(dir, VesselDatasets.Options.defaults().withEstimateFov(true)).load(0).fov());
    }

    @Test
    void stareReadsGzippedPpmAndSkipsUnlabelledImages() throws IOException {
        gz(ppm(a.image()), dir.resolve("stare-images/im0001.ppm.gz"));
        gz(ppm(b.image()), dir.resolve("stare-images/im0002.ppm.gz"));
        gz(ppm(b.image()), dir.resolve("stare-images/im0003.ppm.gz")); // no label: not a sample
        gz(ppm(a.mask()), dir.resolve("labels-ah/im0001.ah.ppm.gz"));
        Files.write(dir.resolve("labels-ah/im0002.ah.ppm"), ppm(b.mask())); // plain ppm too
        gz(ppm(b.mask()), dir.resolve("labels-vk/im0001.vk.ppm.gz"));
        assertEquals(VesselDatasets.Layout.STARE, VesselDatasets.detect(dir));
        SampleSource ah = VesselDatasets.open(dir, VesselDatasets.Layout.AUTO, VesselDatasets.Options.defaults());
        assertEquals(List.of("im0001", "im0002"), ids(ah));
        assertSamePixels(a, ah.load(0), true);
        assertSamePixels(b, ah.load(1), true);
        SampleSource vk = VesselDatasets.stare(dir, VesselDatasets.Options.defaults().withAnnotator(2));
        assertEquals(List.of("im0001"), ids(vk));
        assertArrayEquals(Torch.toBytes(b.mask()), Torch.toBytes(vk.load(0).mask()));
        // a corrupt gzip names the file
        Files.write(dir.resolve("stare-images/im0002.ppm.gz"), new byte[] {1, 2, 3});
        IOException e = assertThrows(IOException.class, () -> ah.load(1));
        assertTrue(e.getMessage().contains("im0002.ppm.gz"), e.getMessage());
    }

    @Test
    void hrfWithUppercaseJpgTifMasksAndFov() throws IOException {
        write(a.image(), dir.resolve("images/01_dr.JPG"));
        write(a.mask(), dir.resolve("manual1/01_dr.tif"));
        write(a.fov(), dir.resolve("mask/01_dr_mask.tif"));
        write(b.image(), dir.resolve("images/01_h.jpg"));
        write(b.mask(), dir.resolve("manual1/01_h.tif"));
        write(b.fov(), dir.resolve("mask/01_h_mask.tif"));
        assertEquals(VesselDatasets.Layout.HRF, VesselDatasets.detect(dir));
        SampleSource s = VesselDatasets.open(dir, VesselDatasets.Layout.AUTO, VesselDatasets.Options.defaults());
        assertEquals(List.of("01_dr", "01_h"), ids(s));
        Sample got = s.load(0);
        assertSamePixels(a, got, false);
        assertArrayEquals(Torch.toBytes(a.fov()), Torch.toBytes(got.fov()));
    }

    @Test
    void fivesSplitsAndGroundTruthFolderWithASpace() throws IOException {
        write(a.image(), dir.resolve("train/Original/1_A.png"));
        write(a.mask(), dir.resolve("train/Ground truth/1_A.png"));
        write(b.image(), dir.resolve("test/Original/2_N.png"));
        write(b.mask(), dir.resolve("test/Ground truth/2_N.png"));
        assertEquals(VesselDatasets.Layout.FIVES, VesselDatasets.detect(dir));
        SampleSource test = VesselDatasets.open(dir, VesselDatasets.Layout.AUTO, VesselDatasets.Options.defaults());
        assertEquals(List.of("test_2_N"), ids(test));
        assertSamePixels(b, test.load(0), true);
        SampleSource all = VesselDatasets.fives(dir, VesselDatasets.Options.defaults().withSplit("all"));
        assertEquals(List.of("train_1_A", "test_2_N"), ids(all));
        assertThrows(IllegalArgumentException.class,
                () -> VesselDatasets.fives(dir, VesselDatasets.Options.defaults().withSplit("val")));
    }

    @Test
    void plainFoldersAndSizeMismatch() throws IOException {
        write(a.image(), dir.resolve("images/x.png"));
        write(a.mask(), dir.resolve("masks/x.png"));
        write(a.image(), dir.resolve("images/y.png"));
        write(new SyntheticSource(CFG.withSize(40, 40), 1, 1).load(0).mask(), dir.resolve("masks/y.png"));
        assertEquals(VesselDatasets.Layout.FOLDERS, VesselDatasets.detect(dir));
        SampleSource s = VesselDatasets.open(dir, VesselDatasets.Layout.AUTO,
                VesselDatasets.Options.defaults().withText("the vessels"));
        assertEquals("the vessels", s.load(0).text());
        SizeMismatchException e = assertThrows(SizeMismatchException.class, () -> s.load(1));
        assertTrue(e.getMessage().contains("y.png") && e.getMessage().contains("40x40")
                && e.getMessage().contains("72x64"), e.getMessage());
    }

    @Test
    void unknownLayoutAndMissingPathsAreClearErrors() throws IOException {
        Files.createDirectories(dir.resolve("empty"));
        IOException e = assertThrows(IOException.class, () -> VesselDatasets.detect(dir.resolve("empty")));
        assertTrue(e.getMessage().contains("cannot tell the dataset layout"), e.getMessage());
        e = assertThrows(IOException.class, () -> VesselDatasets.open(dir.resolve("nope"), VesselDatasets.Layout.AUTO,
                VesselDatasets.Options.defaults()));
        assertTrue(e.getMessage().contains("nope"), e.getMessage());
        e = assertThrows(IOException.class, () -> VesselDatasets.hrf(dir.resolve("empty"), VesselDatasets.Options.defaults()));
        assertTrue(e.getMessage().contains("images"), e.getMessage());
        assertEquals(VesselDatasets.Layout.CHASE_DB1, VesselDatasets.Layout.parse("chasedb1"));
        assertThrows(IllegalArgumentException.class, () -> VesselDatasets.Layout.parse("drvie"));
        assertThrows(IllegalArgumentException.class, () -> VesselDatasets.Options.defaults().withAnnotator(3));
    }

    static List<String> ids(SampleSource s) {
        return java.util.stream.IntStream.range(0, s.size()).mapToObj(s::id).toList();
    }
}
