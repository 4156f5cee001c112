package dev.sa2va.mllm;

import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;

/**
 * The xtuner prompt templates Sa2VA uses (config key {@code template}), and Sa2VA's prompt construction for one
 * image: {@code <image>} in the user text becomes {@code <img>} + {@code <IMG_CONTEXT>}·n + {@code </img>}
 * (Sa2VA appends "\n" per frame and then strips, so one image ends without a newline), the result goes into the
 * template's INSTRUCTION, with no system prompt. Sa2VA-4B pairs {@link #PHI3_CHAT} with a Qwen tokenizer, where
 * {@code <|end|>} is plain text: its stop word is matched on decoded text, not as a token.
 */
public enum ChatTemplate {
    QWEN_CHAT("qwen_chat", "<|im_start|>user\n{input}<|im_end|>\n<|im_start|>assistant\n", "<|im_end|>", "<|endoftext|>"),
    PHI3_CHAT("phi3_chat", "<|user|>\n{input}<|end|>\n<|assistant|>\n", "<|end|>"),
    INTERNLM2_CHAT("internlm2_chat", "<|im_start|>user\n{input}<|im_end|>\n<|im_start|>assistant\n", "<|im_end|>");

    public static final String IMAGE_PLACEHOLDER = "<image>";
    public static final String IMG_START = "<img>";
    public static final String IMG_END = "</img>";
    public static final String IMG_CONTEXT = "<IMG_CONTEXT>";
    public static final String SEG = "[SEG]";

    private final String name;
    private final String instruction;
    private final List<String> stopWords;

    ChatTemplate(String name, String instruction, String... stopWords) {
        this.name = name;
        this.instruction = instruction;
        this.stopWords = List.of(stopWords);
    }

    /** The config name, e.g. "qwen_chat". */
    public String configName() {
        return name;
    }

    public List<String> stopWords() {
        return stopWords;
    }

    /** The template by its config name; the error lists the known ones. */
    public static ChatTemplate byName(String name) {
        for (ChatTemplate t : values()) {
            if (t.name.equals(name)) {
                return t;
            }
        }
        throw new IllegalArgumentException("template '" + name + "' not supported; known: "
                + Arrays.stream(values()).map(t -> t.name).collect(Collectors.joining(", ")));
    }

    /** {@code <img><IMG_CONTEXT>…</img>} with {@code numImageTokens} context tokens. */
    public static String imageTokens(int numImageTokens) {
        if (numImageTokens < 0) {
            throw new IllegalArgumentException("numImageTokens must be >= 0, got " + numImageTokens);
        }
        return IMG_START + IMG_CONTEXT.repeat(numImageTokens) + IMG_END;
    }

    /** The template around already-prepared user text (Python's {@code INSTRUCTION.format(input=text)}). */
    public String instruction(String input) {
        int at = instruction.indexOf("{input}");
        return instruction.substring(0, at) + input + instruction.substring(at + "{input}".length());
    }

    /**
     * Sa2VA's full prompt for one image of {@code numImageTokens} tokens (tiles · 256): every {@code <image>} in
     * {@code userText} is replaced by the image tokens, then the template is applied. Text without {@code <image>}
     * gives a text-only prompt (then {@code numImageTokens} is ignored).
     */
    public String prompt(String userText, int numImageTokens) {
        String text = userText.contains(IMAGE_PLACEHOLDER)
                ? userText.replace(IMAGE_PLACEHOLDER, imageTokens(numImageTokens)) : userText;
        return instruction(text);
    }
}
