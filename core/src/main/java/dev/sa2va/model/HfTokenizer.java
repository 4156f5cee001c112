package dev.sa2va.model;

import dev.sa2va.mllm.Tokenizer;
import java.io.IOException;
import java.nio.file.Path;

/**
 * {@link TextTokenizer} over {@link Tokenizer} (HF tokenizers through DJL). A class of its own so that DJL is only
 * loaded when a model actually has a {@code tokenizer.json}: the GPU host's class path leaves DJL out.
 */
final class HfTokenizer implements TextTokenizer {
    private final Tokenizer tok;

    private HfTokenizer(Tokenizer tok) {
        this.tok = tok;
    }

    static HfTokenizer load(Path fileOrDir) throws IOException {
        try {
            return new HfTokenizer(Tokenizer.load(fileOrDir));
        } catch (NoClassDefFoundError e) {
            throw new IOException(fileOrDir + ": HF tokenizers (ai.djl.huggingface:tokenizers) is not on the class path ("
                    + e.getMessage() + ")", e);
        }
    }

    @Override
    public long[] encode(String text) {
        return tok.encode(text);
    }

    @Override
    public String decode(long[] ids) {
        return tok.decode(ids, false);
    }

    @Override
    public long tokenId(String token) {
        return tok.id(token);
    }

    @Override
    public boolean hasToken(String token) {
        return tok.hasToken(token);
    }

    @Override
    public String describe() {
        return "HF tokenizer " + tok.file();
    }

    @Override
    public void close() {
        tok.close();
    }
}
