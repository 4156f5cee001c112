package dev.sa2va.mllm;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Qwen2 byte-level BPE (NFC, Qwen2 split regex, ByteLevel, added and special tokens such as {@code [SEG]},
 * {@code <IMG_CONTEXT>}, {@code <|im_start|>}) from a local {@code tokenizer.json}, through HF's own Rust
 * {@code tokenizers} as packaged by DJL ({@code ai.djl.huggingface:tokenizers}, native library inside the jar,
 * no network). Using HF's implementation rather than a re-implementation is what makes ids identical to
 * Python's, including the corner cases of added-token matching and byte fallback in decoding; the tests
 * check it on 3000 strings encoded by HF {@code tokenizers}.
 *
 * <p>No BOS/EOS is added (Qwen2's post-processor adds none), no truncation, no padding.
 */
public final class Tokenizer implements AutoCloseable {
    private final Path file;
    private final HuggingFaceTokenizer hf;
    private final Map<String, Long> added;
    private final Map<String, Boolean> special;

    private Tokenizer(Path file, HuggingFaceTokenizer hf, Map<String, Long> added, Map<String, Boolean> special) {
        this.file = file;
        this.hf = hf;
        this.added = added;
        this.special = special;
    }

    /** Loads {@code tokenizer.json} (the file, or a model folder holding it). */
    public static Tokenizer load(Path fileOrDir) throws IOException {
        Path file = Files.isDirectory(fileOrDir) ? fileOrDir.resolve("tokenizer.json") : fileOrDir;
        if (!Files.isRegularFile(file)) {
            throw new IOException("tokenizer.json not found: " + file + " (only the tokenizers JSON format is supported)");
        }
        Map<String, Long> added = new LinkedHashMap<>();
        Map<String, Boolean> special = new LinkedHashMap<>();
        try {
            JsonObject root = JsonParser.parseString(Files.readString(file)).getAsJsonObject();
            JsonElement at = root.get("added_tokens");
            if (at != null && at.isJsonArray()) {
                for (JsonElement e : (JsonArray) at) {
                    JsonObject o = e.getAsJsonObject();
                    added.put(o.get("content").getAsString(), o.get("id").getAsLong());
                    special.put(o.get("content").getAsString(), o.has("special") && o.get("special").getAsBoolean());
                }
            }
        } catch (RuntimeException e) {
            throw new IOException(file + ": not a valid tokenizer.json (" + e.getMessage() + ")", e);
        }
        HuggingFaceTokenizer hf;
        try {
            hf = HuggingFaceTokenizer.builder().optTokenizerPath(file).optAddSpecialTokens(true)
                    .optTruncation(false).optPadding(false).build();
        } catch (RuntimeException e) {
            throw new IOException(file + ": HF tokenizers could not load it (" + e.getMessage() + ")", e);
        }
        return new Tokenizer(file, hf, Collections.unmodifiableMap(added), Collections.unmodifiableMap(special));
    }

    public Path file() {
        return file;
    }

    /** Token ids of {@code text}; added tokens ({@code [SEG]}, {@code <IMG_CONTEXT>}, ...) match as in Python. */
    public long[] encode(String text) {
        if (text == null) {
            throw new IllegalArgumentException("text is null");
        }
        return hf.encode(text, true, false).getIds();
    }

    /** Text of {@code ids}; with {@code skipSpecial} the special added tokens are left out. */
    public String decode(long[] ids, boolean skipSpecial) {
        return hf.decode(ids, skipSpecial);
    }

    /** Id of an added token (e.g. "[SEG]", "<IMG_CONTEXT>"); the error names the token and the file. */
    public long id(String token) {
        Long id = added.get(token);
        if (id == null) {
            throw new IllegalArgumentException(file + ": no added token '" + token + "' (Sa2VA's tokenizer adds [SEG], "
                    + "<img>, </img>, <IMG_CONTEXT>, ...)");
        }
        return id;
    }

    /** True when {@code token} is an added token. */
    public boolean hasToken(String token) {
        return added.containsKey(token);
    }

    /** Added tokens in file order, with their ids. */
    public Map<String, Long> addedTokens() {
        return added;
    }

    /** Whether an added token is special (dropped by {@code decode(ids, true)}). */
    public boolean isSpecial(String token) {
        return Boolean.TRUE.equals(special.get(token));
    }

    @Override
    public void close() {
        hf.close();
    }
}
