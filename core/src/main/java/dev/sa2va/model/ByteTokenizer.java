package dev.sa2va.model;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A stand-in tokenizer for models with random weights and no {@code tokenizer.json} (benchmarks, memory runs, numeric
 * cross-checks): every UTF-8 byte is its own id (0..255), and the added tokens Sa2VA needs ({@code <img>},
 * {@code <IMG_CONTEXT>}, {@code [SEG]}, ...) are single ids at Qwen2.5/InternVL2.5's positions. Prompts get the right
 * structure and length class (the image tokens dominate), but the text ids mean nothing: never use it with a trained
 * checkpoint. Python reproduces it in three lines (core/verification/e2e/e2e_reference.py), which is what makes it
 * usable for cross-checks.
 *
 * <p>Encoding scans left to right; at each position the longest added token that starts there wins, otherwise the
 * bytes of one code point are emitted. Decoding maps ids below 256 back to bytes (UTF-8, malformed sequences
 * replaced), added tokens to their text, and anything else to {@code <|id|>}.
 */
public final class ByteTokenizer implements TextTokenizer {
    /** Ids of the InternVL2.5 / Qwen2.5 tokenizer that Sa2VA-1B/4B use (Sa2VA's own tokens follow InternVL's). */
    public static final Map<String, Long> QWEN_SA2VA_IDS;

    static {
        Map<String, Long> m = new LinkedHashMap<>();
        m.put("<|endoftext|>", 151643L);
        m.put("<|im_start|>", 151644L);
        m.put("<|im_end|>", 151645L);
        m.put("<img>", 151665L);
        m.put("</img>", 151666L);
        m.put("<IMG_CONTEXT>", 151667L);
        m.put("[SEG]", 151674L);
        QWEN_SA2VA_IDS = Collections.unmodifiableMap(m);
    }

    private final Map<String, Long> added;
    private final Map<Long, String> byId = new LinkedHashMap<>();
    private final List<String> longestFirst;

    /** @param added added tokens and their ids (each ≥ 256, distinct) */
    public ByteTokenizer(Map<String, Long> added) {
        if (added == null || added.isEmpty()) {
            throw new IllegalArgumentException("added tokens: need at least one");
        }
        for (var e : added.entrySet()) {
            if (e.getKey() == null || e.getKey().isEmpty()) {
                throw new IllegalArgumentException("added tokens: empty token text");
            }
            if (e.getValue() == null || e.getValue() < 256) {
                throw new IllegalArgumentException("added token '" + e.getKey() + "': id " + e.getValue()
                        + " collides with the byte ids 0..255");
            }
            if (byId.put(e.getValue(), e.getKey()) != null) {
                throw new IllegalArgumentException("added token '" + e.getKey() + "': id " + e.getValue() + " used twice");
            }
        }
        this.added = Collections.unmodifiableMap(new LinkedHashMap<>(added));
        List<String> l = new ArrayList<>(added.keySet());
        l.sort((a, b) -> Integer.compare(b.length(), a.length()));
        this.longestFirst = List.copyOf(l);
    }

    /** With {@link #QWEN_SA2VA_IDS}. */
    public static ByteTokenizer qwen() {
        return new ByteTokenizer(QWEN_SA2VA_IDS);
    }

    /**
     * For a random-weight model folder: the ids in its {@code config.json} under
     * {@code _sa2va_java_fixture.token_ids} (written by core/verification/mllm/mllm_reference.py), else
     * {@link #QWEN_SA2VA_IDS}.
     */
    public static ByteTokenizer forModel(java.nio.file.Path dir) throws java.io.IOException {
        java.nio.file.Path file = java.nio.file.Files.isDirectory(dir) ? dir.resolve("config.json") : dir;
        com.google.gson.JsonObject root;
        try {
            root = com.google.gson.JsonParser.parseString(java.nio.file.Files.readString(file)).getAsJsonObject();
        } catch (RuntimeException e) {
            throw new java.io.IOException(file + ": not a valid JSON object (" + e.getMessage() + ")", e);
        }
        com.google.gson.JsonElement fx = root.get("_sa2va_java_fixture");
        if (fx == null || !fx.isJsonObject() || !fx.getAsJsonObject().has("token_ids")) {
            return qwen();
        }
        Map<String, Long> ids = new LinkedHashMap<>();
        try {
            for (var e : fx.getAsJsonObject().getAsJsonObject("token_ids").entrySet()) {
                ids.put(e.getKey(), e.getValue().getAsLong());
            }
            return new ByteTokenizer(ids);
        } catch (RuntimeException e) {
            throw new java.io.IOException(file + ": _sa2va_java_fixture.token_ids: " + e.getMessage(), e);
        }
    }

    public Map<String, Long> addedTokens() {
        return added;
    }

    @Override
    public long[] encode(String text) {
        if (text == null) {
            throw new IllegalArgumentException("text is null");
        }
        long[] out = new long[Math.max(16, text.length() * 2)];
        int n = 0;
        int i = 0;
        while (i < text.length()) {
            String hit = null;
            for (String t : longestFirst) {
                if (text.startsWith(t, i)) {
                    hit = t;
                    break;
                }
            }
            if (hit != null) {
                out = room(out, n, 1);
                out[n++] = added.get(hit);
                i += hit.length();
                continue;
            }
            int cp = text.codePointAt(i);
            byte[] b = new String(Character.toChars(cp)).getBytes(StandardCharsets.UTF_8);
            out = room(out, n, b.length);
            for (byte x : b) {
                out[n++] = x & 0xff;
            }
            i += Character.charCount(cp);
        }
        return java.util.Arrays.copyOf(out, n);
    }

    private static long[] room(long[] a, int n, int more) {
        return n + more <= a.length ? a : java.util.Arrays.copyOf(a, Math.max(2 * a.length, n + more));
    }

    @Override
    public String decode(long[] ids) {
        StringBuilder sb = new StringBuilder();
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        for (long id : ids) {
            if (id >= 0 && id < 256) {
                bytes.write((int) id);
                continue;
            }
            sb.append(bytes.toString(StandardCharsets.UTF_8));
            bytes.reset();
            String t = byId.get(id);
            sb.append(t != null ? t : "<|" + id + "|>");
        }
        sb.append(bytes.toString(StandardCharsets.UTF_8));
        return sb.toString();
    }

    @Override
    public long tokenId(String token) {
        Long id = added.get(token);
        if (id == null) {
            throw new IllegalArgumentException("byte-level stand-in tokenizer: no added token '" + token + "' (has "
                    + added.keySet() + ")");
        }
        return id;
    }

    @Override
    public boolean hasToken(String token) {
        return added.containsKey(token);
    }

    @Override
    public String describe() {
        return "byte-level stand-in tokenizer (random-weight models only)";
    }
}
