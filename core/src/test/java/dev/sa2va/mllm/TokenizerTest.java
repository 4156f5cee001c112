package dev.sa2va.mllm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.zip.GZIPInputStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The tokenizer against HF {@code tokenizers} 0.23 (phase-1 fixture, generated on the GPU host): a byte-level BPE
 * trained there and configured like Qwen2.5's, with Sa2VA's added tokens, and 3000 strings (ASCII, CJK, emoji,
 * whitespace runs, other scripts, random code points, special tokens and near misses) with their ids and
 * decodings.
 */
class TokenizerTest {
    static Tokenizer tok;
    static JsonObject meta;

    @BeforeAll
    static void load() throws IOException {
        Path dir = Fixtures.dir("tokenizer");
        tok = Tokenizer.load(dir.resolve("tokenizer.json"));
        meta = JsonParser.parseString(Files.readString(dir.resolve("tokenizer_meta.json"))).getAsJsonObject();
    }

    @AfterAll
    static void close() {
        tok.close();
    }

    record Case(String kind, String text, long[] ids, String decoded, String decodedSkipSpecial) {
    }

    static List<Case> cases() throws IOException {
        List<Case> out = new ArrayList<>();
        Path f = Fixtures.dir("tokenizer").resolve("tokenizer_cases.jsonl.gz");
        try (BufferedReader r = new BufferedReader(new InputStreamReader(new GZIPInputStream(Files.newInputStream(f)),
                StandardCharsets.UTF_8))) {
            for (String line; (line = r.readLine()) != null; ) {
                if (line.isBlank()) {
                    continue;
                }
                JsonObject o = JsonParser.parseString(line).getAsJsonObject();
                JsonArray a = o.getAsJsonArray("ids");
                long[] ids = new long[a.size()];
                for (int i = 0; i < ids.length; i++) {
                    ids[i] = a.get(i).getAsLong();
                }
                out.add(new Case(o.get("kind").getAsString(), o.get("text").getAsString(), ids,
                        o.get("decoded").getAsString(), o.get("decoded_skip_special").getAsString()));
            }
        }
        return out;
    }

    @Test
    void encodesAndDecodesLikeHfTokenizers() throws IOException {
        List<Case> cases = cases();
        assertEquals(meta.get("num_cases").getAsInt(), cases.size());
        Map<String, Integer> perKind = new TreeMap<>();
        long tokens = 0;
        for (Case c : cases) {
            String where = c.kind + " case " + new com.google.gson.Gson().toJson(c.text);
            assertArrayEquals(c.ids, tok.encode(c.text), "ids of " + where);
            assertEquals(c.decoded, tok.decode(c.ids, false), "decode of " + where);
            assertEquals(c.decodedSkipSpecial, tok.decode(c.ids, true), "decode (skip special) of " + where);
            perKind.merge(c.kind, 1, Integer::sum);
            tokens += c.ids.length;
        }
        assertEquals(meta.get("num_tokens_total").getAsLong(), tokens);
        // every kind the fixture promises was present
        for (var k : meta.getAsJsonArray("case_kinds")) {
            assertTrue(perKind.containsKey(k.getAsString()), "no case of kind " + k);
        }
    }

    @Test
    void addedTokenIdsAndSpecialFlags() {
        JsonObject ids = meta.getAsJsonObject("added_tokens"), special = meta.getAsJsonObject("special");
        assertEquals(ids.size(), tok.addedTokens().size());
        for (var e : ids.entrySet()) {
            assertEquals(e.getValue().getAsLong(), tok.id(e.getKey()), e.getKey());
            assertEquals(special.get(e.getKey()).getAsBoolean(), tok.isSpecial(e.getKey()), e.getKey());
            // each added token encodes to itself alone
            assertArrayEquals(new long[] {tok.id(e.getKey())}, tok.encode(e.getKey()), e.getKey());
        }
        assertFalse(tok.hasToken("<|end|>"));
        IllegalArgumentException ex = assertThrows(IllegalArgumentException.class, () -> tok.id("<|end|>"));
        assertTrue(ex.getMessage().contains("<|end|>"), ex.getMessage());
    }

    @Test
    void longPromptsAreNotTruncated() {
        // a Sa2VA prompt holds 256 context tokens per tile, up to 13 tiles
        String prompt = ChatTemplate.QWEN_CHAT.prompt("<image>\n Please segment the vessels.", 13 * 256);
        long[] ids = tok.encode(prompt);
        long ctx = tok.id("<IMG_CONTEXT>");
        assertEquals(13 * 256, java.util.Arrays.stream(ids).filter(i -> i == ctx).count());
        assertEquals(prompt, tok.decode(ids, false));
    }

    @Test
    void missingOrBrokenFilesNameTheFile(@TempDir Path tmp) throws IOException {
        IOException e1 = assertThrows(IOException.class, () -> Tokenizer.load(tmp));
        assertTrue(e1.getMessage().contains(tmp.resolve("tokenizer.json").toString()), e1.getMessage());
        Path bad = tmp.resolve("tokenizer.json");
        Files.writeString(bad, "{\"model\": ");
        IOException e2 = assertThrows(IOException.class, () -> Tokenizer.load(bad));
        assertTrue(e2.getMessage().contains(bad.toString()), e2.getMessage());
    }
}
