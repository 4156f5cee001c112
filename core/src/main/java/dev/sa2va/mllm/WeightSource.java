package dev.sa2va.mllm;

import dev.sa2va.core.Torch;
import dev.sa2va.io.Checkpoint;
import java.io.IOException;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Where the layers get their parameters from, by Sa2VA name, already cast to the compute dtype and placed on the
 * compute device: a checkpoint ({@link #of}) or seeded random values ({@link #random}, for tests and benchmarks
 * at real dimensions without multi-GB files).
 */
interface WeightSource {
    /** The parameter {@code key} with exactly {@code shape}; IOException naming file and key otherwise. */
    Tensor get(String key, long... shape) throws IOException;

    /** True when the source has {@code key} (random sources have every key except the {@code absent} ones). */
    boolean has(String key);

    ScalarType dtype();

    Device device();

    static WeightSource of(Checkpoint ck, ScalarType dtype, Device device) {
        return new WeightSource() {
            @Override
            public Tensor get(String key, long... shape) throws IOException {
                return ck.load(key, shape, dtype, device);
            }

            @Override
            public boolean has(String key) {
                return ck.contains(key);
            }

            @Override
            public ScalarType dtype() {
                return dtype;
            }

            @Override
            public Device device() {
                return device;
            }
        };
    }

    /**
     * Random parameters with O(1) activations, by name as phase 1's HF reference initialises them: matrices
     * N(0, 1/fan_in), biases N(0, 0.1²), norm weights 1 + N(0, 0.2²), layer scales 0.5 + N(0, 0.2²), class and
     * position embeddings 0.5·N(0, 1), token embeddings N(0, 1). Drawn in fp32 from torch's global generator
     * (seeded once here), then cast.
     */
    static WeightSource random(long seed, ScalarType dtype, Device device, java.util.Set<String> absent) {
        Torch.seed(seed);
        return new WeightSource() {
            @Override
            public Tensor get(String key, long... shape) throws IOException {
                if (absent.contains(key)) {
                    throw new IOException("random weights: no '" + key + "'");
                }
                try (Scope s = new Scope()) {
                    Tensor r = Torch.randn(ScalarType.Float, device, shape);
                    String leaf = key.substring(key.lastIndexOf('.') + 1);
                    Tensor v;
                    if (leaf.equals("ls1") || leaf.equals("ls2")) {
                        v = r.mul(Torch.scalar(0.2)).add(Torch.scalar(0.5));
                    } else if (leaf.equals("class_embedding") || leaf.equals("position_embedding")) {
                        v = r.mul(Torch.scalar(0.5));
                    } else if (key.contains("embed_tokens")) {
                        v = r;
                    } else if (leaf.equals("bias")) {
                        v = r.mul(Torch.scalar(0.1));
                    } else if (shape.length == 1) {
                        v = r.mul(Torch.scalar(0.2)).add(Torch.scalar(1.0));
                    } else {
                        long fanIn = 1;
                        for (int i = 1; i < shape.length; i++) {
                            fanIn *= shape[i];
                        }
                        v = r.mul(Torch.scalar(1.0 / Math.sqrt(fanIn)));
                    }
                    return s.keep(v.to(dtype));
                }
            }

            @Override
            public boolean has(String key) {
                return !absent.contains(key);
            }

            @Override
            public ScalarType dtype() {
                return dtype;
            }

            @Override
            public Device device() {
                return device;
            }
        };
    }
}
