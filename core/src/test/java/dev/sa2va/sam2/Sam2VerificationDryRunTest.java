package dev.sa2va.sam2;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import dev.sa2va.core.Devices;
import java.io.IOException;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The SAM2-L GPU verification's code path ({@link Sam2Verification}), run on the CPU with the tiny fixtures so
 * that its file handling, comparisons and report are exercised before GPU time is spent on it. The tiny fixture
 * has no HF bf16 outputs, so bf16 bounds fall back to 2e-2 and may flag the low-norm selected-mask keys; the
 * float32 part must pass completely.
 */
class Sam2VerificationDryRunTest {
    @Test
    void tinyFixturePassesTheFloat32PartOnTheCpu() throws IOException {
        Sam2Verification.Result r = Sam2Verification.verify(Sam2Fixtures.dir(), Sam2Fixtures.TAG, Devices.cpu(),
                Sam2Config.tinyRandom());
        List<String> notBf16 = r.failures().stream().filter(f -> !f.startsWith("bf16 ")).toList();
        assertEquals(List.of(), notBf16, r.json());
        JsonObject fp32 = r.report().getAsJsonObject("float32");
        assertTrue(fp32.get("max_relative_error").getAsDouble() <= 1e-4);
        // every reference key except the integer selections is compared: 53 float keys in the fixture
        assertEquals(Sam2Fixtures.reference().size() - Sam2Comparison.PROMPTS.size(),
                fp32.getAsJsonObject("relative_error").size(), fp32.toString());
        JsonObject bf = r.report().getAsJsonObject("bfloat16");
        assertTrue(bf.getAsJsonObject("bound").size() > 40, bf.toString());
        assertTrue(r.report().get("preprocess_max_abs_uint8_levels").getAsDouble() <= 1.0001);
    }
}
