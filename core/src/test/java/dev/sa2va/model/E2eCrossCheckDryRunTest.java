package dev.sa2va.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import dev.sa2va.io.SafeTensors;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.bytedeco.javacpp.PointerScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The GPU host's cross-check program (E2eCrossCheck) on the CPU with the tiny checkpoint, without tokenizer.json as
 * on the host: it must write what e2e_reference.py reads, and its byte-level prompt ids must have Sa2VA's structure.
 */
class E2eCrossCheckDryRunTest {
    @TempDir
    Path tmp;

    @Test
    void writesImagesAndJavaOutputsForBothDtypes() throws Exception {
        Path model = TinySa2va.write(tmp.resolve("model"), 3);
        Files.delete(model.resolve("tokenizer.json"));
        Path out = tmp.resolve("xcheck");
        JsonObject r = E2eCrossCheck.run(model, out, List.of("fp32", "bf16"), 2, new int[][] {{60, 50}, {40, 72}}, "cpu",
                5);
        assertTrue(Files.isRegularFile(out.resolve("images/img0.png")));
        assertTrue(Files.isRegularFile(out.resolve("java.json")));
        JsonObject fp32 = r.getAsJsonObject("summary").getAsJsonObject("fp32");
        assertTrue(fp32.get("tokenizer").getAsString().startsWith("byte-level"), fp32.get("tokenizer").getAsString());
        try (PointerScope s = new PointerScope();
             SafeTensors a = SafeTensors.open(out.resolve("java_fp32.safetensors"));
             SafeTensors b = SafeTensors.open(out.resolve("java_bf16.safetensors"))) {
            assertArrayEquals(new long[] {50, 60}, TensorCheck.shapeOf(a.get("img0.seg0.logits")));
            assertArrayEquals(new long[] {72, 40}, TensorCheck.shapeOf(b.get("img1.seg0.logits")));
            assertArrayEquals(new long[] {3}, TensorCheck.shapeOf(a.get("img0.seg0.iou")));
            assertArrayEquals(new long[] {256}, TensorCheck.shapeOf(a.get("img1.seg0.prompt_embedding")));
            long[] ids = Torch.toLongs(a.get("img0.prompt_ids"));
            // qwen_chat around "<img>" + <IMG_CONTEXT> x tiles*9 + "</img>" with the fixture's ids
            long ctx = java.util.Arrays.stream(ids).filter(i -> i == 3007).count();
            assertEquals(fp32.getAsJsonArray("images").get(0).getAsJsonObject().get("tiles").getAsInt() * 9, ctx);
            assertEquals(3001, ids[0]);                                  // <|im_start|>
            assertEquals('u', ids[1]);                                   // "user" as bytes
            assertEquals(1, a.get("img0.seg0.selected").numel());
            // the two dtypes answer the same question about the same image: bf16 logits near the fp32 ones
            double rel = Torch.relError(b.get("img0.seg0.logits"), a.get("img0.seg0.logits"));
            assertTrue(rel < 0.1, "bf16 vs fp32 relative error " + rel);
        }
    }
}
