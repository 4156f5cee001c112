package dev.sa2va.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The documented example commands keep working: generate a synthetic DRIVE folder, then evaluate it. */
class ExamplesTest {
    @TempDir
    Path dir;

    @Test
    void generateThenEvaluate() throws Exception {
        Path data = dir.resolve("synthetic");
        GenerateSynthetic.main(new String[] {data.toString(), "--count", "3", "--train", "1", "--size", "128x112",
            "--seed", "9", "--thin", "0.8", "--npy"});
        assertEquals(128 + 3 * 112 * 128 * 3, Files.size(data.resolve("npy/images.npy")));
        assertEquals(128 + 3 * 112 * 128, Files.size(data.resolve("npy/vessels.npy")));
        assertTrue(Files.isRegularFile(data.resolve("test/images/03_test.tif")));
        assertTrue(Files.isRegularFile(data.resolve("training/1st_manual/01_manual1.gif")));
        assertTrue(Files.readString(data.resolve("synthetic.txt")).contains("thinVessels=0.8"));

        Path out = dir.resolve("eval");
        EvaluateDataset.main(new String[] {data.toString(), "--out", out.toString(), "--overlays", "1",
            "--calibrate", "--prefetch", "1"});
        JsonObject s = JsonParser.parseString(Files.readString(out.resolve("summary.json"))).getAsJsonObject();
        assertEquals(3, s.get("evaluated").getAsInt());
        assertEquals(0, s.get("failed").getAsInt());
        assertTrue(s.has("calibration"));
        assertEquals(4, Files.readAllLines(out.resolve("per_sample.csv")).size());
        try (Stream<Path> f = Files.list(out.resolve("overlays"))) {
            assertEquals(List.of("0000_01_test.png"), f.map(p -> p.getFileName().toString()).toList());
        }
    }

    @Test
    void argumentErrorsAreClear() {
        Args a = new Args(new String[] {"x", "--n", "3", "--f"}, Set.of("f"), Set.of("n"));
        assertEquals(List.of("x"), a.positional);
        assertEquals(3, a.integer("n", 0));
        assertTrue(a.flag("f"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new Args(new String[] {"--nope"}, Set.of(), Set.of()));
        assertEquals("unknown option --nope", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new Args(new String[] {"--n"}, Set.of(), Set.of("n")));
        assertThrows(IllegalArgumentException.class,
                () -> new Args(new String[] {"--n", "x"}, Set.of(), Set.of("n")).integer("n", 0));
        assertEquals(565, GenerateSynthetic.parseSize("565x584")[0]);
        assertEquals(1024, GenerateSynthetic.parseSize("1024")[1]);
        assertThrows(IllegalArgumentException.class, () -> GenerateSynthetic.parseSize("big"));
    }
}
