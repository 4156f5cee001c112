package dev.sa2va.metrics;

import dev.sa2va.core.KernelCall;
import dev.sa2va.core.TensorCheck;
import dev.sa2va.kernels.MaskStatsKernels;
import java.util.Arrays;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * N binary masks of P pixels each, 1 bit per pixel: {@code bits} is uint8 {@code [N, ceil(P/8)]}, pixel i of a mask
 * at bit {@code i % 8} of byte {@code i / 8} (least significant bit first, {@code numpy.packbits(m, axis=-1,
 * bitorder="little")} of the flattened rows); padding bits are zero. 8x less memory traffic than uint8 masks, which
 * is what the reward kernels are bound by; sampled RL masks come in this form.
 *
 * @param bits        uint8 {@code [N, ceil(P/8)]}, contiguous
 * @param sampleShape shape of one mask (e.g. {@code [H, W]}); P is its product
 */
public record BitMasks(Tensor bits, long[] sampleShape) {
    public BitMasks {
        TensorCheck.of("bits", bits).dtype(ScalarType.Byte).dims(2).contiguous();
        if (sampleShape.length == 0) {
            sampleShape = new long[] {1};
        }
        long p = 1;
        for (long s : sampleShape) {
            if (s < 1) {
                throw new IllegalArgumentException("sampleShape: sizes must be >= 1, got " + Arrays.toString(sampleShape));
            }
            p *= s;
        }
        if (bits.size(1) != (p + 7) / 8) {
            throw new IllegalArgumentException("bits: " + bits.size(1) + " bytes per mask do not hold "
                    + Arrays.toString(sampleShape) + " = " + p + " pixels (need " + (p + 7) / 8 + ")");
        }
        sampleShape = sampleShape.clone();
    }

    /** Number of masks N. */
    public long count() {
        return bits.size(0);
    }

    /** Pixels per mask P. */
    public long pixels() {
        long p = 1;
        for (long s : sampleShape) {
            p *= s;
        }
        return p;
    }

    @Override
    public long[] sampleShape() {
        return sampleShape.clone();
    }

    /**
     * Packs uint8 (or bool) masks {@code [N, ...]} whose values are 0 or 1. Checks the values, which reads one
     * number back to the host (a synchronisation on CUDA: pack targets once, when preparing data).
     *
     * @throws IllegalArgumentException naming {@code name} when a value is neither 0 nor 1
     */
    public static BitMasks pack(Tensor masks, String name) {
        return pack(masks, name, true);
    }

    /** {@link #pack(Tensor, String)}; with {@code validate} false, values other than 0/1 become 1, without a sync. */
    public static BitMasks pack(Tensor masks, String name, boolean validate) {
        TensorCheck.of(name, masks).cpuOrCuda().dtype(ScalarType.Byte, ScalarType.Bool).minDims(1).nonEmpty()
                .contiguous();
        long n = masks.size(0), p = masks.numel() / n;
        long[] shape = TensorCheck.shapeOf(masks);
        int dev = KernelCall.deviceIndex(masks);
        Tensor out = KernelCall.empty(ScalarType.Byte, dev, n, (p + 7) / 8);
        Tensor invalid = KernelCall.zeros(ScalarType.Long, dev, 1);
        Pointer stream = KernelCall.stream(dev, "mask_pack_cuda");
        if (dev >= 0) {
            MaskStatsKernels.mask_pack_cuda(masks.data_ptr(), n, p, out.data_ptr(), invalid.data_ptr(), stream);
        } else {
            MaskStatsKernels.mask_pack_cpu(masks.data_ptr(), n, p, out.data_ptr(), invalid.data_ptr());
        }
        if (validate) {
            long bad = invalid.item().toLong();
            if (bad != 0) {
                throw new IllegalArgumentException(name + ": " + bad + " value(s) other than 0 and 1 (binary masks "
                        + "expected; threshold or compare first, e.g. masks.gt(0))");
            }
        }
        return new BitMasks(out, Arrays.copyOfRange(shape, 1, shape.length));
    }

    /** The masks as uint8 0/1 {@code [N, sampleShape...]} on the same device. */
    public Tensor unpack() {
        long n = count(), p = pixels();
        int dev = KernelCall.deviceIndex(bits);
        long[] shape = new long[sampleShape.length + 1];
        shape[0] = n;
        System.arraycopy(sampleShape, 0, shape, 1, sampleShape.length);
        Tensor out = KernelCall.empty(ScalarType.Byte, dev, shape);
        Pointer stream = KernelCall.stream(dev, "mask_unpack_cuda");
        if (dev >= 0) {
            MaskStatsKernels.mask_unpack_cuda(bits.data_ptr(), n, p, out.data_ptr(), stream);
        } else {
            MaskStatsKernels.mask_unpack_cpu(bits.data_ptr(), n, p, out.data_ptr());
        }
        return out;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof BitMasks b && b.bits == bits && Arrays.equals(b.sampleShape, sampleShape);
    }

    @Override
    public int hashCode() {
        return System.identityHashCode(bits) * 31 + Arrays.hashCode(sampleShape);
    }

    @Override
    public String toString() {
        return "BitMasks[" + count() + " x " + Arrays.toString(sampleShape) + "]";
    }
}
