package dev.sa2va.eval;

import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * A segmenter for tests: it knows the ground truth (by sample id) and returns a blurred, perturbed copy of it
 * ({@link #map}), or fails on chosen samples in chosen ways.
 */
final class FakeSegmenter implements Segmenter {
    enum Fault { OOM_ONCE, OOM_ALWAYS, REAL_OOM_ONCE, THROW, WRONG_SIZE, NAN, OUT_OF_RANGE, LOGITS }

    private final Map<String, Tensor> truth;
    private final Map<String, Fault> faults = new HashMap<>();
    private final int levels;
    final List<String> calls = new ArrayList<>();
    int releases;

    /** @param truth uint8 masks by sample id, made outside any PointerScope */
    FakeSegmenter(Map<String, Tensor> truth, int levels) {
        this.truth = truth;
        this.levels = levels;
    }

    FakeSegmenter fail(String id, Fault f) {
        faults.put(id, f);
        return this;
    }

    /**
     * The map returned for a mask: a 3x3 box blur of it, squeezed into [0.1, 0.9], plus a smooth deterministic
     * ripple of amplitude 0.25, clamped to [0, 1] - so thresholds produce FP and FN, reproducibly.
     */
    static Tensor map(Tensor mask) {
        long h = mask.size(0), w = mask.size(1);
        Tensor m = mask.to(ScalarType.Float).reshape(1, 1, h, w);
        Tensor blur = torch.avg_pool2d(m, new long[] {3, 3}, new long[] {1, 1}, new long[] {1, 1}, false, true,
                new org.bytedeco.pytorch.LongOptional()).reshape(h, w);
        float[] ripple = new float[(int) (h * w)];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                ripple[(int) (y * w + x)] = (float) (0.25 * Math.sin(0.7 * x + 1.3 * y) * Math.cos(0.23 * x - 0.41 * y));
            }
        }
        return blur.mul(Torch.scalar(0.8)).add(Torch.scalar(0.1)).add(Torch.fromFloats(ripple, h, w))
                .clamp(new org.bytedeco.pytorch.ScalarOptional(Torch.scalar(0.0)),
                        new org.bytedeco.pytorch.ScalarOptional(Torch.scalar(1.0)));
    }

    @Override
    public String name() {
        return "fake";
    }

    @Override
    public int memoryLevels() {
        return levels;
    }

    @Override
    public Prediction segment(Input in, int level) throws Exception {
        calls.add(in.sampleId() + "@" + level);
        Fault f = faults.get(in.sampleId());
        Tensor t = truth.get(in.sampleId());
        if (t == null) {
            throw new IllegalStateException("no truth for " + in.sampleId());
        }
        if (f != null) {
            switch (f) {
                case OOM_ONCE:
                    if (level == 0) {
                        throw new RuntimeException("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total "
                                + "capacity of 23.64 GiB of which 1.20 GiB is free.");
                    }
                    break;
                case REAL_OOM_ONCE:
                    if (level == 0) {
                        Torch.empty(ScalarType.Float, Devices.cpu(), 1L << 45); // 128 TiB: libtorch's allocator fails
                    }
                    break;
                case OOM_ALWAYS:
                    throw new OutOfMemoryFailure("too big at level " + level);
                case THROW:
                    throw new IllegalStateException("model exploded\nsecond line");
                case WRONG_SIZE:
                    return Prediction.probabilities(Torch.zeros(ScalarType.Float, Devices.cpu(), in.height() - 1,
                            in.width()));
                case NAN:
                    return Prediction.probabilities(map(t).mul(Torch.scalar(Double.NaN)));
                case OUT_OF_RANGE:
                    return Prediction.probabilities(map(t).mul(Torch.scalar(3.0)));
                case LOGITS:
                    return Prediction.logits(torch.logit(map(t).clamp(new org.bytedeco.pytorch.ScalarOptional(
                            Torch.scalar(1e-6)), new org.bytedeco.pytorch.ScalarOptional(Torch.scalar(1 - 1e-6)))));
                default:
                    break;
            }
        }
        return Prediction.probabilities(map(t));
    }

    @Override
    public void releaseMemory() {
        releases++;
    }
}
