package dev.sa2va.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.core.Torch;
import dev.sa2va.io.ImageFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Polygon filling against a brute-force reference, and Sa2VA's annotations.json. */
class Sa2vaAnnotationsTest {
    @TempDir
    Path dir;

    /** Independent reference: crossing number of a ray from the pixel centre towards +x, per pixel. */
    static byte[] bruteForce(double[] xy, int w, int h) {
        byte[] out = new byte[w * h];
        int n = xy.length / 2;
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                double px = x + 0.5, py = y + 0.5;
                boolean in = false;
                for (int i = 0, j = n - 1; i < n; j = i++) {
                    double xi = xy[2 * i], yi = xy[2 * i + 1], xj = xy[2 * j], yj = xy[2 * j + 1];
                    if ((yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi) {
                        in = !in;
                    }
                }
                out[y * w + x] = (byte) (in ? 1 : 0);
            }
        }
        return out;
    }

    @Test
    void polygonFillMatchesPointInPolygonOnRandomPolygons() {
        Random r = new Random(1);
        int w = 37, h = 29;
        for (int trial = 0; trial < 300; trial++) {
            int n = 3 + r.nextInt(8);
            double[] xy = new double[2 * n];
            for (int i = 0; i < n; i++) {
                // some vertices outside the image, some on half-pixel lines (ties on the scan line)
                xy[2 * i] = trial % 3 == 0 ? Math.round(r.nextDouble() * 2 * w) / 2.0 - 3 : r.nextDouble() * (w + 10) - 5;
                xy[2 * i + 1] = trial % 3 == 0 ? Math.round(r.nextDouble() * 2 * h) / 2.0 - 3 : r.nextDouble() * (h + 10) - 5;
            }
            byte[] got = new byte[w * h];
            PolygonRaster.fill(xy, w, h, got);
            byte[] want = bruteForce(xy, w, h);
            int differ = 0;
            for (int i = 0; i < got.length; i++) {
                differ += got[i] != want[i] ? 1 : 0;
            }
            // the two rules agree except for a centre exactly on an edge (which side it falls on is a convention)
            assertTrue(differ <= 2, "trial " + trial + ": " + differ + " pixels differ");
        }
    }

    @Test
    void rectangleCoversItsAreaAndLargePolygonsTheirArea() {
        byte[] m = new byte[20 * 10];
        PolygonRaster.fill(new double[] {2, 1, 12, 1, 12, 7, 2, 7}, 20, 10, m);
        int count = 0;
        for (byte b : m) {
            count += b;
        }
        assertEquals(60, count);
        // a big triangle: pixel count within a perimeter's worth of the shoelace area
        double[] tri = {3.3, 2.1, 180.7, 40.2, 60.5, 150.9};
        byte[] t = new byte[200 * 200];
        PolygonRaster.fill(tri, 200, 200, t);
        double area = Math.abs((tri[2] - tri[0]) * (tri[5] - tri[1]) - (tri[4] - tri[0]) * (tri[3] - tri[1])) / 2;
        int c = 0;
        for (byte b : t) {
            c += b;
        }
        assertEquals(area, c, 0.02 * area);
    }

    @Test
    void readsObjectsAsSamplesLikeSa2vasLoader() throws IOException {
        int w = 40, h = 32;
        Path img = dir.resolve("images/fundus 1.png");
        ImageFiles.write(ImageFiles.rgbImage(new SyntheticSource(SyntheticFundus.Config.defaults().withSize(w, h), 1, 1)
                .load(0).image()), img);
        Files.writeString(dir.resolve("annotations.json"), "[{\"image\": \"fundus 1.png\", "
                + "\"mask\": [[[1, 1, 11, 1, 11, 6, 1, 6], [20, 20, 30, 20, 30, 25]], [[5, 10, 4, 3]]], "
                + "\"text\": [\"The Optic Disc.\", \"a Vessel\"]}]");
        SampleSource s = VesselDatasets.open(dir, VesselDatasets.Layout.AUTO, VesselDatasets.Options.defaults());
        assertEquals(2, s.size());
        assertEquals("fundus 1.png#0", s.id(0));
        Sample first = s.load(0), second = s.load(1);
        assertEquals("the optic disc", first.text());
        assertEquals("a vessel", second.text());
        assertEquals(first.imageId(), second.imageId());
        byte[] want = new byte[w * h];
        PolygonRaster.fill(new double[] {1, 1, 11, 1, 11, 6, 1, 6}, w, h, want);
        PolygonRaster.fill(new double[] {20, 20, 30, 20, 30, 25}, w, h, want);
        assertArrayEquals(want, Torch.toBytes(first.mask()));
        // four numbers are a COCO box [x, y, w, h]: pixels x 5..8, y 10..12
        byte[] box = Torch.toBytes(second.mask());
        int count = 0;
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                boolean in = x >= 5 && x < 9 && y >= 10 && y < 13;
                assertEquals(in ? 1 : 0, box[y * w + x], "box pixel " + x + "," + y);
                count += box[y * w + x];
            }
        }
        assertEquals(12, count);
    }

    @Test
    void structuralErrorsNameFileEntryAndObject() throws IOException {
        Path j = dir.resolve("annotations.json");
        Files.writeString(j, "[{\"image\": \"a.png\", \"mask\": [[[1, 2, 3, 4, 5, 6]]], \"text\": []}]");
        IOException e = assertThrows(IOException.class, () -> Sa2vaAnnotations.open(j));
        assertTrue(e.getMessage().contains("annotations.json: entry 0 (a.png): 1 masks but 0 texts"), e.getMessage());
        Files.writeString(j, "[{\"image\": \"a.png\", \"mask\": [[[1, 2, 3, 4, 5]]], \"text\": [\"x\"]}]");
        e = assertThrows(IOException.class, () -> Sa2vaAnnotations.open(j));
        assertTrue(e.getMessage().contains("mask 0 polygon 0") && e.getMessage().contains("got 5"), e.getMessage());
        Files.writeString(j, "[{\"image\": \"a.png\", \"mask\": [{\"size\": [2, 2], \"counts\": \"x\"}], \"text\": [\"x\"]}]");
        e = assertThrows(IOException.class, () -> Sa2vaAnnotations.open(j));
        assertTrue(e.getMessage().contains("RLE"), e.getMessage());
        Files.writeString(j, "{\"image\": \"a.png\"}");
        e = assertThrows(IOException.class, () -> Sa2vaAnnotations.open(j));
        assertTrue(e.getMessage().contains("expected a JSON list"), e.getMessage());
        Files.writeString(j, "[{\"image\": \"a.png\", \"mask\": [[[1, 2, 3, 4, 5, 6]]], \"text\": [\"x\"]}");
        e = assertThrows(IOException.class, () -> Sa2vaAnnotations.open(j));
        assertTrue(e.getMessage().contains("not valid JSON"), e.getMessage());
        // structure fine, image missing: fails when the sample is loaded, naming the image
        Files.writeString(j, "[{\"image\": \"a.png\", \"mask\": [[[1, 2, 3, 4, 5, 6]]], \"text\": [\"x\"]}]");
        Sa2vaAnnotations ok = Sa2vaAnnotations.open(j);
        e = assertThrows(IOException.class, () -> ok.load(0));
        assertTrue(e.getMessage().contains("a.png"), e.getMessage());
    }
}
