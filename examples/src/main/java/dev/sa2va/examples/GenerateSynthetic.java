package dev.sa2va.examples;

import dev.sa2va.core.Torch;
import dev.sa2va.data.DriveLayoutWriter;
import dev.sa2va.data.Sample;
import dev.sa2va.data.SyntheticFundus;
import dev.sa2va.data.SyntheticSource;
import dev.sa2va.io.Npy;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Set;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Writes a synthetic fundus dataset with exact vessel masks in the DRIVE layout
 * ({@code test/images/01_test.tif}, {@code test/1st_manual/01_manual1.gif}, {@code test/mask/01_test_mask.gif}),
 * readable by every DRIVE loader.
 *
 * <pre>
 * mvn -q -DskipTests -pl examples -am package exec:java -Dexample.main=dev.sa2va.examples.GenerateSynthetic \
 *     -Dexec.args="synthetic-drive --count 20 --size 565x584 --seed 1 --thin 0.5 --noise 0.02"
 * </pre>
 * Options: {@code --count N} test images (20), {@code --train N} training images (0; seed ~S), {@code --size WxH}
 * or {@code --size N} (565x584, DRIVE's), {@code --seed S} (1), and the difficulty knobs of
 * {@link SyntheticFundus.Config}: {@code --thin --contrast --noise --illumination --vignetting --tortuosity
 * --branching --blur}. {@code --npy} also writes the test split as {@code npy/images.npy} (N, H, W, 3),
 * {@code npy/vessels.npy} and {@code npy/fov.npy} (N, H, W), uint8, for Python scripts with numpy only. The
 * configuration is saved next to the data in {@code synthetic.txt}.
 */
public final class GenerateSynthetic {
    public static void main(String[] argv) throws Exception {
        Args a;
        try {
            a = new Args(argv, Set.of("npy"), Set.of("count", "train", "size", "seed", "thin", "contrast", "noise",
                    "illumination", "vignetting", "tortuosity", "branching", "blur"));
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.err.println("usage: GenerateSynthetic [OUT_DIR] [--count N] [--train N] [--size WxH] [--seed S] "
                    + "[--thin X] [--contrast X] [--noise X] [--illumination X] [--vignetting X] [--tortuosity X] "
                    + "[--branching X] [--blur X]");
            System.exit(2);
            return;
        }
        try {
            run(a);
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.exit(2);
        }
    }

    private static void run(Args a) throws java.io.IOException {
        Torch.setThreads(Integer.getInteger("sa2va.threads", Math.max(1, Runtime.getRuntime().availableProcessors())));
        Path out = Path.of(a.positional.isEmpty() ? "synthetic-drive" : a.positional.get(0));
        SyntheticFundus.Config d = SyntheticFundus.Config.defaults();
        int[] size = parseSize(a.get("size", "565x584"));
        SyntheticFundus.Config c = new SyntheticFundus.Config(size[0], size[1], a.number("thin", d.thinVessels()),
                a.number("contrast", d.contrast()), a.number("noise", d.noise()),
                a.number("illumination", d.illumination()), a.number("vignetting", d.vignetting()),
                a.number("tortuosity", d.tortuosity()), a.number("branching", d.branching()), a.number("blur", d.blur()));
        long seed = (long) a.number("seed", 1);
        int count = a.integer("count", 20), train = a.integer("train", 0);
        long t0 = System.nanoTime();
        SyntheticSource test = new SyntheticSource(c, seed, count);
        DriveLayoutWriter.write(test, out, "test", null);
        // the training split gets its own seed (~seed, far from the small seeds people pick for other test sets)
        long trainSeed = ~seed;
        if (train > 0) {
            DriveLayoutWriter.write(new SyntheticSource(c, trainSeed, train), out, "training", null);
        }
        if (a.flag("npy")) {
            // the same test images as arrays, for Python cross-checks that have numpy but no image library
            long h = c.height(), w = c.width();
            try (Npy images = new Npy(out.resolve("npy/images.npy"), ScalarType.Byte, count, h, w, 3);
                 Npy vessels = new Npy(out.resolve("npy/vessels.npy"), ScalarType.Byte, count, h, w);
                 Npy fov = new Npy(out.resolve("npy/fov.npy"), ScalarType.Byte, count, h, w)) {
                for (int i = 0; i < count; i++) {
                    Sample s = test.load(i);
                    images.append(s.image());
                    vessels.append(s.mask());
                    fov.append(s.fov());
                }
            }
        }
        double vessel = 0, thin = 0;
        for (int i = 0; i < Math.min(count, 5); i++) {
            SyntheticFundus.Stats s = test.fundus(i).stats();
            vessel += s.vesselFraction();
            thin += s.thinFraction();
        }
        int probe = Math.min(count, 5);
        String info = String.format(Locale.ROOT, "synthetic fundus dataset (sa2va-java SyntheticFundus)%n"
                + "test: %d images, seed %d; training: %d images, seed %d%n%s%n", count, seed, train, trainSeed, c);
        Files.writeString(out.resolve("synthetic.txt"), info, StandardCharsets.UTF_8);
        System.out.printf(Locale.ROOT, "wrote %d test + %d training images (%dx%d) to %s in %.1f s%n", count, train,
                c.width(), c.height(), out, (System.nanoTime() - t0) / 1e9);
        if (probe > 0) {
            System.out.printf(Locale.ROOT, "vessels cover %.1f%% of the FOV; %.1f%% of vessel pixels are thin "
                    + "(< 2 px wide)  [first %d images]%n", 100 * vessel / probe, 100 * thin / probe, probe);
        }
        System.out.println("layout: " + out.resolve("test/images/01_test.tif") + ", test/1st_manual/01_manual1.gif, "
                + "test/mask/01_test_mask.gif");
    }

    static int[] parseSize(String s) {
        String[] p = s.toLowerCase(Locale.ROOT).split("x");
        try {
            if (p.length == 1) {
                int n = Integer.parseInt(p[0].trim());
                return new int[] {n, n};
            }
            if (p.length == 2) {
                return new int[] {Integer.parseInt(p[0].trim()), Integer.parseInt(p[1].trim())};
            }
        } catch (NumberFormatException e) {
            // fall through
        }
        throw new IllegalArgumentException("--size: expected WxH or N, got '" + s + "'");
    }
}
