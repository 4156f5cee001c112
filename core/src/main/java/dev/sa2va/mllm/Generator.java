package dev.sa2va.mllm;

import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.T_TensorTensor_T;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Greedy decoding as Sa2VA runs it ({@code do_sample=False}): prefill the prompt embeddings into a KV cache, then
 * one token at a time, each generated token fed back. Stops after a stop token (e.g. eos, included in the
 * output), or when the decoded text, with "\r" and "\n" removed, ends with a stop string (xtuner's
 * StopWordStoppingCriteria, needed for phi3's {@code <|end|>}, which is not a token), or at the length limit.
 * Final-normed hidden states of generated [SEG] tokens are collected when they are fed back (so a [SEG] that
 * ends the output has none, as in Sa2VA).
 */
public final class Generator {
    private Generator() {
    }

    /**
     * @param maxNewTokens  generation limit (Sa2VA: 2048)
     * @param stopTokenIds  tokens that end generation (included in the output)
     * @param stopStrings   suffixes of the decoded output that end generation (need a decoder)
     * @param segTokenId    the [SEG] id, or −1 to collect nothing
     * @param recordMargins also return each step's top-1 minus top-2 logit (to tell near-ties from bugs)
     */
    public record Options(int maxNewTokens, long[] stopTokenIds, List<String> stopStrings, long segTokenId,
                          boolean recordMargins) {
        public Options {
            if (maxNewTokens < 1) {
                throw new IllegalArgumentException("maxNewTokens must be >= 1, got " + maxNewTokens);
            }
            stopTokenIds = stopTokenIds == null ? new long[0] : stopTokenIds.clone();
            stopStrings = stopStrings == null ? List.of() : List.copyOf(stopStrings);
        }

        /** A fixed number of tokens, no stops, no [SEG] collection. */
        public static Options tokens(int n) {
            return new Options(n, null, null, -1, true);
        }
    }

    /**
     * @param tokens      generated ids
     * @param stopReason  "token", "string" or "length"
     * @param segHidden   {@code [nSeg, H]} final-normed hidden states of the fed-back [SEG] tokens (caller closes)
     * @param margins     top-1 − top-2 logit per step (empty unless recorded)
     */
    public record Result(long[] tokens, String stopReason, Tensor segHidden, double[] margins) {
    }

    /**
     * Greedy generation after {@code promptEmbeds [1, L, H]} (e.g. {@link Sa2vaMllm#inputsEmbeds}). {@code decoder}
     * turns ids into text (e.g. {@code ids -> tokenizer.decode(ids, false)}); it may be null when there are no stop
     * strings.
     */
    public static Result greedy(Qwen2Model llm, Tensor promptEmbeds, Options opt, Function<long[], String> decoder) {
        TensorCheck.of("promptEmbeds", promptEmbeds).dims(3);
        if (promptEmbeds.size(0) != 1 || promptEmbeds.size(1) < 1) {
            throw new IllegalArgumentException("promptEmbeds: expected [1, L >= 1, H], got "
                    + TensorCheck.shapeString(promptEmbeds));
        }
        if (!opt.stopStrings().isEmpty() && decoder == null) {
            throw new IllegalArgumentException("stop strings need a decoder");
        }
        long promptLen = promptEmbeds.size(1);
        List<Long> tokens = new ArrayList<>();
        List<Double> margins = new ArrayList<>();
        List<Tensor> segRows = new ArrayList<>();
        String reason = "length";
        try (NoGradGuard g = new NoGradGuard(); Scope outer = new Scope();
             KvCache cache = llm.newCache(1, promptLen + opt.maxNewTokens())) {
            Tensor last;
            try (Scope s = new Scope()) {
                Tensor h = llm.forward(promptEmbeds, cache, Probe.NONE);
                last = s.keep(h.narrow(1, promptLen - 1, 1));
            }
            for (int step = 0; step < opt.maxNewTokens(); step++) {
                long tok;
                try (Scope s = new Scope()) {
                    Tensor logits = llm.logits(last).reshape(-1).to(ScalarType.Float);
                    if (opt.recordMargins()) {
                        T_TensorTensor_T top = logits.topk(2);
                        double[] v = Torch.toDoubles(top.get0());
                        tok = Torch.toLongs(top.get1())[0];
                        margins.add(v[0] - v[1]);
                    } else {
                        tok = logits.argmax().item().toLong();
                    }
                }
                tokens.add(tok);
                if (contains(opt.stopTokenIds(), tok)) {
                    reason = "token";
                    break;
                }
                if (!opt.stopStrings().isEmpty() && endsWithStop(decoder.apply(toArray(tokens)), opt.stopStrings())) {
                    reason = "string";
                    break;
                }
                if (step + 1 == opt.maxNewTokens()) {
                    break;
                }
                try (Scope s = new Scope()) {
                    Tensor id = Torch.fromLongs(new long[] {tok}, 1, 1).to(last.device(), ScalarType.Long);
                    Tensor h = llm.forward(llm.embed(id), cache, Probe.NONE);
                    last.close();
                    last = s.keep(h);
                    if (tok == opt.segTokenId()) {
                        segRows.add(s.keep(h.reshape(1, -1)));
                    }
                }
            }
            Tensor seg = segRows.isEmpty()
                    ? Torch.empty(llm.dtype(), last.device(), 0, llm.config().hiddenSize())
                    : torch.cat(new TensorVector(segRows.toArray(new Tensor[0])), 0);
            double[] m = margins.stream().mapToDouble(Double::doubleValue).toArray();
            return new Result(toArray(tokens), reason, outer.keep(seg), m);
        }
    }

    /** xtuner's check: decoded text without "\r"/"\n" ends with a stop word. */
    static boolean endsWithStop(String text, List<String> stops) {
        String t = text.replace("\r", "").replace("\n", "");
        for (String s : stops) {
            if (!s.isEmpty() && t.endsWith(s)) {
                return true;
            }
        }
        return false;
    }

    private static boolean contains(long[] a, long v) {
        for (long x : a) {
            if (x == v) {
                return true;
            }
        }
        return false;
    }

    private static long[] toArray(List<Long> l) {
        return l.stream().mapToLong(Long::longValue).toArray();
    }
}
