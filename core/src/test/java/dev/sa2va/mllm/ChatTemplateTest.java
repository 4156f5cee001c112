package dev.sa2va.mllm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Prompt construction against phase 1's Python re-statement of Sa2VA's (reference.json of the tiny fixture: the
 * prompt strings of all three templates for one image of 3 tiles × 9 tokens, and their ids from HF tokenizers).
 */
class ChatTemplateTest {
    @Test
    void promptsAndIdsMatchThePythonReference() throws Exception {
        Path dir = Fixtures.dir("tiny");
        JsonObject meta = JsonParser.parseString(Files.readString(dir.resolve("reference.json"))).getAsJsonObject();
        int imageTokens = meta.get("num_tiles").getAsInt() * meta.get("tokens_per_tile").getAsInt();
        String user = meta.get("user_text").getAsString();
        JsonObject prompts = meta.getAsJsonObject("prompts"), ids = meta.getAsJsonObject("prompt_ids_by_template");
        JsonObject stops = meta.getAsJsonObject("stop_words");
        assertEquals(ChatTemplate.values().length, prompts.size());
        try (Tokenizer tok = Tokenizer.load(dir.resolve("model"))) {
            for (ChatTemplate t : ChatTemplate.values()) {
                String name = t.configName();
                String p = t.prompt(user, imageTokens);
                assertEquals(prompts.get(name).getAsString(), p, name);
                assertArrayEquals(longs(ids.getAsJsonArray(name)), tok.encode(p), name + " ids");
                List<String> sw = new ArrayList<>();
                stops.getAsJsonArray(name).forEach(e -> sw.add(e.getAsString()));
                assertEquals(sw, t.stopWords(), name + " stop words");
                assertEquals(t, ChatTemplate.byName(name));
            }
            // text-only prompt (the fixture's Qwen2ForCausalLM input)
            assertEquals(meta.get("text_prompt").getAsString(),
                    ChatTemplate.QWEN_CHAT.prompt("Describe thin vessels, please.", 0));
        }
    }

    @Test
    void oneImageEndsWithoutNewlineAndUnknownTemplatesAreRejected() {
        assertEquals("<|user|>\n<img><IMG_CONTEXT><IMG_CONTEXT></img>\nx<|end|>\n<|assistant|>\n",
                ChatTemplate.PHI3_CHAT.prompt("<image>\nx", 2));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ChatTemplate.byName("vicuna"));
        assertTrue(e.getMessage().contains("vicuna") && e.getMessage().contains("qwen_chat"), e.getMessage());
    }

    static long[] longs(JsonArray a) {
        long[] out = new long[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).getAsLong();
        }
        return out;
    }
}
