package dev.sa2va.mllm;

import dev.sa2va.core.Torch;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Rotary position embedding of Qwen2 ("rotate half" layout): inverse frequencies {@code 1 / θ^(2i/d)} from the
 * config's θ, angles {@code position · inv_freq} in float32, cos/sin in float32 then cast to the compute dtype,
 * as HF's Qwen2RotaryEmbedding. Tables cover positions [0, capacity) and grow on demand.
 *
 * <p>Applied as {@code x·cos + swap(x)·sinSigned}, where swap exchanges the two halves of the head dimension and
 * sinSigned is (−sin | sin): the same value as HF's {@code x·cos + rotate_half(x)·sin} in three kernels.
 */
final class RotaryEmbedding implements AutoCloseable {
    private final int headDim;
    private final ScalarType dtype;
    private final Device device;
    private final Tensor invFreq;
    private Tensor cos;
    private Tensor sinSigned;
    private long capacity;

    RotaryEmbedding(int headDim, double theta, ScalarType dtype, Device device) {
        this.headDim = headDim;
        this.dtype = dtype;
        this.device = device;
        try (Scope s = new Scope()) {
            // computed on the compute device in float32, as transformers does at model construction
            Tensor idx = torch.arange(new Scalar(0L), new Scalar((long) headDim), new Scalar(2L),
                    Torch.options(ScalarType.Long, device)).to(ScalarType.Float).div(Torch.scalar((double) headDim));
            invFreq = Scope.pin(torch.pow(new Scalar(theta), idx).reciprocal());
        }
    }

    Tensor invFreq() {
        return invFreq;
    }

    /** cos and signed sin for positions [start, start + length): two {@code [length, headDim]} views. */
    Tensor[] table(long start, long length) {
        ensure(start + length);
        return new Tensor[] {cos.narrow(0, start, length), sinSigned.narrow(0, start, length)};
    }

    private void ensure(long needed) {
        if (needed <= capacity) {
            return;
        }
        long cap = Math.max(needed, Math.max(4096, capacity * 2));
        try (Scope s = new Scope()) {
            Tensor pos = torch.arange(new Scalar(cap), Torch.options(ScalarType.Long, device)).to(ScalarType.Float);
            Tensor freqs = pos.unsqueeze(1).mul(invFreq.unsqueeze(0));            // [cap, d/2], one fp32 product each
            Tensor emb = torch.cat(new TensorVector(freqs, freqs), 1);
            Tensor c = emb.cos().to(dtype);
            Tensor sn = freqs.sin();
            Tensor ss = torch.cat(new TensorVector(sn.neg(), sn), 1).to(dtype);
            if (cos != null) {
                cos.close();
                sinSigned.close();
            }
            cos = Scope.pin(c);
            sinSigned = Scope.pin(ss);
            capacity = cap;
        }
    }

    /** Rotates {@code x [B, heads, L, headDim]} by the cos/sin rows of its positions ({@code [L, headDim]}). */
    Tensor apply(Tensor x, Tensor cosRows, Tensor sinSignedRows) {
        int half = headDim / 2;
        Tensor swapped = torch.cat(new TensorVector(x.narrow(-1, half, half), x.narrow(-1, 0, half)), -1);
        return x.mul(cosRows).addcmul_(swapped, sinSignedRows);
    }

    @Override
    public void close() {
        invFreq.close();
        if (cos != null) {
            cos.close();
            sinSigned.close();
        }
    }
}
