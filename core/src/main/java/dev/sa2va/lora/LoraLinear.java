package dev.sa2va.lora;

import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import java.util.List;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * A frozen linear layer W0 (d_out x d_in, optional bias) with a trainable LoRA adapter (Hu et al., "LoRA: Low-Rank
 * Adaptation of Large Language Models", 2021):
 *
 * <pre>  y = x·W0ᵀ + bias + s·(dropout(x)·Aᵀ)·Bᵀ,   A: r x d_in,  B: d_out x r,  s = alpha/r (alpha/sqrt(r) with rsLoRA)</pre>
 *
 * <p>Training without libtorch autograd (see shared/docs/architecture.md §3): {@link #forwardTrain} returns the
 * output with what backward needs (a reference to x and the r-wide activation s·dropout(x)·Aᵀ; the dropout mask is
 * regenerated from the seed, never stored), {@link #backward} returns dX and adds dA, dB into {@link #gradA()},
 * {@link #gradB()}. A and B are float32 master weights (float64 for float64 layers) that an optimizer may update in
 * place; the kernels use copies in the layer's dtype, refreshed when torch's version counter of a master changes.
 * The gradients are also attached as the masters' {@code grad()}, so libtorch optimizers built over
 * {@link #parameters()} see them.
 *
 * <p>Initialisation follows PEFT ({@code init_lora_weights=True}): A ~ U(-1/sqrt(d_in), 1/sqrt(d_in)) (Kaiming
 * uniform with a = sqrt(5)) from torch's global generator, B = 0, so a fresh adapter leaves the output unchanged.
 *
 * <p>Not thread-safe; calls on CUDA are asynchronous on torch's current stream. The base weight and bias are the
 * caller's tensors and are not copied ({@link #merge()} modifies the weight in place, as PEFT does).
 */
public final class LoraLinear implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(LoraLinear.class.getName());

    private final Tensor weight, bias, weightT;
    private final Tensor loraA, loraB;
    private final long dIn, dOut;
    private final int rank;
    private final double alpha;
    private final boolean rsLora;
    private final double dropout;
    private final long seed;
    private final ScalarType dtype, masterType;
    private final int device;  // CUDA index, -1 = CPU
    private Tensor aCompute, bCompute;
    private long aVersion = Long.MIN_VALUE, bVersion = Long.MIN_VALUE;
    private Tensor gradA, gradB;
    private long nextOffset;
    private boolean merged;

    private LoraLinear(Builder b) {
        TensorCheck.of("weight", b.weight).cpuOrCuda().dtype(LoraOps.LAYER_TYPES).dims(2).nonEmpty().contiguous();
        this.weight = b.weight;
        this.dtype = Torch.dtype(weight);
        if (dtype == ScalarType.Double && weight.is_cuda()) {
            throw new IllegalArgumentException("weight: float64 LoRA runs on the CPU only (use float32 on CUDA)");
        }
        this.dOut = weight.size(0);
        this.dIn = weight.size(1);
        if (b.bias != null) {
            TensorCheck.of("bias", b.bias).dtype(dtype).shape(dOut).sameDevice("weight", weight).contiguous();
        }
        this.bias = b.bias;
        LoraOps.checkRank(b.rank, "rank");
        if (b.rank > Math.min(dIn, dOut)) {
            LOG.log(System.Logger.Level.WARNING, "LoRA rank {0} exceeds min(d_in, d_out) = {1}: B·A cannot have rank "
                    + "above {1}, so the extra rank only costs time and memory", b.rank, Math.min(dIn, dOut));
        }
        this.rank = b.rank;
        LoraOps.checkScale(b.alpha, "alpha");
        this.alpha = b.alpha;
        this.rsLora = b.rsLora;
        LoraOps.checkDropout(b.dropout);
        this.dropout = b.dropout;
        this.seed = b.seed;
        this.masterType = LoraOps.gradType(dtype);
        this.device = dev.sa2va.core.KernelCall.deviceIndex(weight);
        if (b.loraA != null) {
            TensorCheck.of("lora_A", b.loraA).dtype(LoraOps.LAYER_TYPES).shape(rank, dIn);
            TensorCheck.of("lora_B", b.loraB).dtype(LoraOps.LAYER_TYPES).shape(dOut, rank);
            this.loraA = LoraOps.retain(b.loraA.to(weight.device(), masterType).contiguous().clone());
            this.loraB = LoraOps.retain(b.loraB.to(weight.device(), masterType).contiguous().clone());
        } else {
            double bound = 1.0 / Math.sqrt(dIn);
            Tensor a = Torch.empty(masterType, weight.device(), rank, dIn);
            a.uniform_(-bound, bound, new GeneratorOptional());
            this.loraA = LoraOps.retain(a);
            this.loraB = LoraOps.retain(Torch.zeros(masterType, weight.device(), dOut, rank));
        }
        this.weightT = LoraOps.retain(weight.t());
    }

    /** Starts a layer over the frozen base weight {@code [d_out, d_in]} (float32, float16, bfloat16; float64 on CPU). */
    public static Builder builder(Tensor weight) {
        return new Builder(weight);
    }

    /** Options of a {@link LoraLinear}; the defaults are PEFT's (r = 8, alpha = 8, no dropout). */
    public static final class Builder {
        private final Tensor weight;
        private Tensor bias, loraA, loraB;
        private int rank = 8;
        private double alpha = 8;
        private boolean rsLora;
        private double dropout;
        private long seed;

        private Builder(Tensor weight) {
            this.weight = weight;
        }

        /** Frozen bias {@code [d_out]} of the base layer (null: none). */
        public Builder bias(Tensor bias) {
            this.bias = bias;
            return this;
        }

        /** Rank r in [1, 256]; above min(d_in, d_out) it is allowed but logged as a warning. */
        public Builder rank(int rank) {
            this.rank = rank;
            return this;
        }

        public Builder alpha(double alpha) {
            this.alpha = alpha;
            return this;
        }

        /** Rank-stabilised scaling s = alpha/sqrt(r) (Kalajdzievski 2023) instead of alpha/r. */
        public Builder rsLora(boolean rsLora) {
            this.rsLora = rsLora;
            return this;
        }

        /** Dropout probability of the LoRA input during training, in [0, 1). */
        public Builder dropout(double p) {
            this.dropout = p;
            return this;
        }

        /** Seed of the dropout masks (Philox key). Each training forward uses the next offset of this stream. */
        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        /** Initial adapter weights A {@code [r, d_in]} and B {@code [d_out, r]} (copied), instead of PEFT's init. */
        public Builder weights(Tensor loraA, Tensor loraB) {
            if (loraA == null || loraB == null) {
                throw new IllegalArgumentException("weights: lora_A and lora_B must both be given");
            }
            TensorCheck.of("lora_A", loraA).dims(2);
            this.loraA = loraA;
            this.loraB = loraB;
            this.rank = (int) Math.min(Integer.MAX_VALUE, loraA.dim() == 2 ? loraA.size(0) : -1);
            return this;
        }

        public LoraLinear build() {
            return new LoraLinear(this);
        }
    }

    // ---- forward / backward ------------------------------------------------------------------------------------

    /** What {@link #backward} needs from a training forward; {@link #output()} is the layer's output. */
    public static final class Saved implements AutoCloseable {
        private final LoraLinear owner;
        private final Tensor output, input, xs, a, b;
        private final long offset, aVersion, bVersion;

        private Saved(LoraLinear owner, Tensor output, Tensor input, Tensor xs, Tensor a, Tensor b, long offset) {
            this.owner = owner;
            this.output = output;
            this.input = input;
            this.xs = xs;
            this.a = a;
            this.b = b;
            this.offset = offset;
            this.aVersion = a._version();
            this.bVersion = b._version();
        }

        public Tensor output() {
            return output;
        }

        /** The dropout stream offset this forward used (its mask is {@code LoraOps.dropoutMask(n, p, seed, offset)}). */
        public long dropoutOffset() {
            return offset;
        }

        /** Releases the saved activation and this object's references to x and the weights (not the output). */
        @Override
        public void close() {
            for (Tensor t : new Tensor[] {xs, input, a, b}) {
                if (!t.isNull()) {
                    t.close();
                }
            }
        }
    }

    /** Inference forward: no dropout; after {@link #merge()} a plain linear layer. */
    public Tensor forward(Tensor x) {
        long rows = LoraOps.checkInput("x", x, weight, device, dIn);
        if (merged) {
            return bias == null ? torch.linear(x, weight) : torch.linear(x, weight, bias);
        }
        return LoraOps.forwardChecked(x, weight, weightT, bias, computeA(), computeB(), scaling(), 0.0, seed, 0, false,
                rows, dIn, dOut, rank, device).y();
    }

    /** Training forward with dropout; keep the result for {@link #backward}. */
    public Saved forwardTrain(Tensor x) {
        if (merged) {
            throw new IllegalStateException("the adapter is merged into the weight: unmerge() before training");
        }
        long rows = LoraOps.checkInput("x", x, weight, device, dIn);
        Tensor a = computeA(), b = computeB();
        long offset = nextOffset++;
        LoraOps.Forward f = LoraOps.forwardChecked(x, weight, weightT, bias, a, b, scaling(), dropout, seed, offset, true,
                rows, dIn, dOut, rank, device);
        // own wrappers (sharing storage): the saved state lives as long as the step's scope, independent of the
        // caller closing x and of the layer replacing its compute copies after an optimizer step
        return new Saved(this, f.y(), new Tensor(x), f.xs(), new Tensor(a), new Tensor(b), offset);
    }

    /** Backward of {@link #forwardTrain}: returns dL/dx and adds dL/dA, dL/dB into {@link #gradA()}, {@link #gradB()}. */
    public Tensor backward(Saved saved, Tensor dy) {
        if (saved == null || saved.owner != this) {
            throw new IllegalArgumentException("saved: not from a forwardTrain of this layer");
        }
        if (saved.xs.isNull()) {
            throw new IllegalArgumentException("saved: already closed");
        }
        if (saved.a._version() != saved.aVersion || saved.b._version() != saved.bVersion) {
            throw new IllegalStateException("lora_A or lora_B was modified in place between forwardTrain and backward "
                    + "(an optimizer step?): the gradient would not belong to the forward; run backward first");
        }
        long rows = saved.input.numel() / dIn;
        ensureGrads();
        LoraOps.checkBackwardArgs(saved.input, dy, saved.xs, weight, device, gradA, gradB, rows, dIn, dOut, rank);
        return LoraOps.backwardChecked(saved.input, dy, saved.xs, weight, saved.a, saved.b, scaling(), dropout, seed,
                saved.offset, gradA, gradB, rows, dIn, dOut, rank, device);
    }

    // ---- merge for deployment ----------------------------------------------------------------------------------

    /** W0 += s·B·A in place (from the float32 masters); forward() is then a plain linear layer. */
    public void merge() {
        if (merged) {
            throw new IllegalStateException("already merged");
        }
        LoraOps.merge(weight, loraA, loraB, scaling());
        merged = true;
    }

    /** W0 -= s·B·A: undoes {@link #merge()} (exactly in float32/64; up to one rounding per element in 16-bit). */
    public void unmerge() {
        if (!merged) {
            throw new IllegalStateException("not merged");
        }
        LoraOps.merge(weight, loraA, loraB, -scaling());
        merged = false;
    }

    public boolean isMerged() {
        return merged;
    }

    // ---- parameters and gradients ------------------------------------------------------------------------------

    /** A and B, the trainable master weights (float32; float64 for float64 layers), for an optimizer. */
    public List<Tensor> parameters() {
        return List.of(loraA, loraB);
    }

    public Tensor loraA() {
        return loraA;
    }

    public Tensor loraB() {
        return loraB;
    }

    /** Accumulated dL/dA {@code [r, d_in]} (allocated as zeros on first use; also {@code loraA().grad()}). */
    public Tensor gradA() {
        ensureGrads();
        return gradA;
    }

    /** Accumulated dL/dB {@code [d_out, r]}. */
    public Tensor gradB() {
        ensureGrads();
        return gradB;
    }

    public void zeroGrad() {
        if (gradA != null) {
            gradA.zero_();
            gradB.zero_();
        }
    }

    /** Copies new adapter weights into the masters (e.g. loaded from a PEFT checkpoint). */
    public void setAdapter(Tensor a, Tensor b) {
        TensorCheck.of("lora_A", a).dtype(LoraOps.LAYER_TYPES).shape(rank, dIn);
        TensorCheck.of("lora_B", b).dtype(LoraOps.LAYER_TYPES).shape(dOut, rank);
        if (merged) {
            throw new IllegalStateException("the adapter is merged into the weight: unmerge() before replacing it");
        }
        loraA.copy_(a);
        loraB.copy_(b);
    }

    private void ensureGrads() {
        if (gradA == null) {
            gradA = LoraOps.retain(Torch.zeros(masterType, weight.device(), rank, dIn));
            gradB = LoraOps.retain(Torch.zeros(masterType, weight.device(), dOut, rank));
            loraA.mutable_grad().put(gradA);
            loraB.mutable_grad().put(gradB);
        }
    }

    private Tensor computeA() {
        if (masterType == dtype) {
            return loraA;
        }
        long v = loraA._version();
        if (aCompute == null || v != aVersion) {
            // a Saved awaiting backward holds its own wrapper of the previous copy, so ours can go
            LoraOps.release(aCompute);
            aCompute = LoraOps.retain(loraA.to(dtype).contiguous());
            aVersion = v;
        }
        return aCompute;
    }

    private Tensor computeB() {
        if (masterType == dtype) {
            return loraB;
        }
        long v = loraB._version();
        if (bCompute == null || v != bVersion) {
            // a Saved awaiting backward holds its own wrapper of the previous copy, so ours can go
            LoraOps.release(bCompute);
            bCompute = LoraOps.retain(loraB.to(dtype).contiguous());
            bVersion = v;
        }
        return bCompute;
    }

    // ---- facts -------------------------------------------------------------------------------------------------

    /** s = alpha/r, or alpha/sqrt(r) with rsLoRA. */
    public double scaling() {
        return rsLora ? alpha / Math.sqrt(rank) : alpha / rank;
    }

    public Tensor weight() {
        return weight;
    }

    /** The frozen bias, or null. */
    public Tensor bias() {
        return bias;
    }

    public int rank() {
        return rank;
    }

    public double alpha() {
        return alpha;
    }

    public boolean rsLora() {
        return rsLora;
    }

    public double dropout() {
        return dropout;
    }

    public long seed() {
        return seed;
    }

    public long inFeatures() {
        return dIn;
    }

    public long outFeatures() {
        return dOut;
    }

    public ScalarType dtype() {
        return dtype;
    }

    /**
     * Releases the layer's own tensors (masters, gradients, compute copies); the base weight and bias stay the
     * caller's. The layer keeps its tensors alive across PointerScopes until this is called.
     */
    @Override
    public void close() {
        for (Tensor t : new Tensor[] {aCompute, bCompute, gradA, gradB, loraA, loraB, weightT}) {
            LoraOps.release(t);
        }
    }
}
