package dev.sa2va.model;

/**
 * Text ↔ token ids for {@link Sa2VA}: a model's own {@code tokenizer.json} ({@link #huggingFace}), or, for
 * random-weight models that have none, {@link ByteTokenizer}.
 */
public interface TextTokenizer extends AutoCloseable {
    /** Ids of {@code text}; added tokens such as {@code [SEG]} or {@code <IMG_CONTEXT>} match as single ids. */
    long[] encode(String text);

    /** Text of {@code ids}, special tokens included. */
    String decode(long[] ids);

    /** Id of an added token; IllegalArgumentException naming the token when there is none. */
    long tokenId(String token);

    /** True when {@code token} is an added token. */
    boolean hasToken(String token);

    /** What it is, for reports. */
    String describe();

    @Override
    default void close() {
    }

    /** The model's {@code tokenizer.json} through HF tokenizers (DJL); see {@link dev.sa2va.mllm.Tokenizer}. */
    static TextTokenizer huggingFace(java.nio.file.Path fileOrDir) throws java.io.IOException {
        return HfTokenizer.load(fileOrDir);
    }
}
