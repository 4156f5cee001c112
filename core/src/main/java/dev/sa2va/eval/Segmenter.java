package dev.sa2va.eval;

import dev.sa2va.core.TensorCheck;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * What the evaluation harness needs from a model: image + referring expression to a per-pixel score map at the
 * image's resolution. Sa2VA plugs in here; {@link FrangiVesselness} is a classical baseline.
 *
 * <p>Out of memory is a distinct, retryable failure: throw {@link OutOfMemoryFailure}, or let libtorch's
 * "CUDA out of memory" error through ({@link OutOfMemoryFailure#matches} recognises it). The harness then closes
 * the attempt's {@code PointerScope} (dropping its tensors), calls {@link #releaseMemory()} and retries at the next
 * {@linkplain #memoryLevels() memory level} (e.g. fewer image tiles). Any other exception fails the sample.
 *
 * <p>Calls come one sample at a time, each inside a JavaCPP {@code PointerScope} that is closed afterwards, so
 * tensors a segmenter keeps across calls (weights, cached image features) must be created outside those calls or
 * kept alive with {@code retainReference()}.
 */
public interface Segmenter extends AutoCloseable {
    /** How to read the returned map. */
    enum MapKind {
        /** Values in [0, 1]; foreground where p > threshold. */
        PROBABILITY,
        /** Real values; foreground where sigmoid(z) > threshold, i.e. z > log(t / (1 − t)). */
        LOGIT
    }

    /**
     * One request.
     *
     * @param sampleId the sample's id (for logs)
     * @param imageId  equal for consecutive requests on the same image (reuse image features across prompts)
     * @param image    uint8 {@code [H, W, 3]} RGB on the CPU
     * @param text     the referring expression, e.g. "blood vessels"; the segmenter builds its own prompt around it
     */
    record Input(String sampleId, String imageId, Tensor image, String text) {
        public int height() {
            return (int) image.size(0);
        }

        public int width() {
            return (int) image.size(1);
        }
    }

    /**
     * A score map for one input.
     *
     * @param map  float32 / float16 / bfloat16 / float64, {@code [H, W]} (leading size-1 dimensions are accepted), on
     *             any device
     * @param kind how to threshold it
     */
    record Prediction(Tensor map, MapKind kind) {
        public Prediction {
            TensorCheck.of("prediction map", map).dtype(ScalarType.Float, ScalarType.Half, ScalarType.BFloat16,
                    ScalarType.Double).minDims(2).nonEmpty();
            if (kind == null) {
                throw new IllegalArgumentException("prediction kind is null");
            }
        }

        public static Prediction probabilities(Tensor p) {
            return new Prediction(p, MapKind.PROBABILITY);
        }

        public static Prediction logits(Tensor z) {
            return new Prediction(z, MapKind.LOGIT);
        }

        /** Probabilities as float32 on the map's device. */
        public Tensor probabilities() {
            Tensor f = map.to(ScalarType.Float);
            return kind == MapKind.LOGIT ? f.sigmoid() : f;
        }

        /** The comparison value equivalent to probability threshold {@code t} for this map. */
        public double cutoff(double t) {
            return kind == MapKind.LOGIT ? dev.sa2va.metrics.MaskMetrics.logitOf(t) : t;
        }
    }

    /** For reports, e.g. "frangi(sigmas=[1.0, 2.0])" or "Sa2VA-1B bf16 cuda:0". */
    String name();

    /**
     * Number of memory settings, from the most demanding (0, the normal one) to the least; the harness moves one
     * level down after an out-of-memory failure. 1 = no fallback.
     */
    default int memoryLevels() {
        return 1;
    }

    /** What a memory level means, for reports (e.g. "12 tiles", "6 tiles"). */
    default String describeLevel(int level) {
        return "level " + level;
    }

    /**
     * Segments {@code input.text()} in {@code input.image()}.
     *
     * @param level memory level, {@code 0 <= level < memoryLevels()}
     * @return a map of the image's height and width
     */
    Prediction segment(Input input, int level) throws Exception;

    /** Called after an out-of-memory failure, before the retry: free caches. Default: torch's CUDA cache. */
    default void releaseMemory() {
        CudaMemory.releaseCachedMemory();
    }

    @Override
    default void close() {
    }
}
