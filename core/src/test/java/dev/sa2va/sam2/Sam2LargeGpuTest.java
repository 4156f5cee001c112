package dev.sa2va.sam2;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sa2va.core.Devices;
import dev.sa2va.testing.Gpu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * SAM2-L (Sa2VA's SAM2) against HF transformers' Sam2Model with identical random weights, generated on the GPU
 * host by core/verification/sam2/sam2_reference.py (--config hiera-large) in the same call: see
 * core/verification/sam2/run_host.sh. The directory comes from {@code -Dsa2va.sam2.large=DIR} or
 * {@code SA2VA_SAM2_LARGE}; without it the test is skipped. The JSON report of every error goes to
 * {@code -Dsa2va.sam2.report=FILE} / {@code SA2VA_SAM2_REPORT} when set, before any assertion. Bounds: see
 * {@link Sam2Verification}.
 */
@Tag("gpu")
class Sam2LargeGpuTest {
    static String setting(String property, String env) {
        String v = System.getProperty(property);
        return v != null && !v.isEmpty() ? v : System.getenv(env);
    }

    Path dir;

    @BeforeEach
    void needGpuAndFixtures() {
        String d = setting("sa2va.sam2.large", "SA2VA_SAM2_LARGE");
        if (d == null || d.isEmpty()) {
            Gpu.require();
            assumeTrue(false, "SAM2-L fixtures not given (-Dsa2va.sam2.large / SA2VA_SAM2_LARGE)");
        }
        // fixtures given: this run is meant to happen, so a missing device is a failure, not a skip
        assertTrue(Devices.cudaAvailable(), "SAM2-L verification requested but no CUDA device / CUDA native library");
        dir = Path.of(d);
    }

    @Test
    void largeMatchesHfInFloat32AndBfloat16() throws IOException {
        String out = setting("sa2va.sam2.report", "SA2VA_SAM2_REPORT");
        Sam2Verification.Result r;
        try {
            r = Sam2Verification.verify(dir, "sam2_hiera_large", Devices.cuda(0), Sam2Config.hieraLarge());
        } catch (IOException | RuntimeException | Error e) {
            if (out != null && !out.isEmpty()) { // the report says why, even when the run dies half-way
                Files.writeString(Path.of(out), "{\"error\": " + new com.google.gson.Gson().toJson(e.toString()) + "}");
            }
            throw e;
        }
        if (out != null && !out.isEmpty()) {
            Files.writeString(Path.of(out), r.json());
        }
        System.out.println(r.json());
        assertEquals(List.of(), r.failures(), "SAM2-L vs HF (report: " + out + ")");
    }
}
