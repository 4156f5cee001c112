package dev.sa2va.sam2;

import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The FPN neck's sine position encoding (DETR style, normalised, scale 2π, temperature 10⁴): for a map of
 * {@code h × w} and {@code channels} = 2·F, channels [0, F) encode the row, [F, 2F) the column; within each half,
 * channel 2j is sin(p / T^(2j/F)) and 2j+1 is cos(p / T^(2j/F)), with p = 2π·(index + 1) / (size + 1e-6).
 * It depends on the map size only, so it is computed on demand, in float64, and cast.
 */
public final class PositionEmbeddingSine {
    static final double TEMPERATURE = 10000;
    static final double EPS = 1e-6;

    private PositionEmbeddingSine() {
    }

    /** The encoding {@code (1, channels, h, w)} in {@code dtype} on {@code device}. */
    public static Tensor encode(int channels, int h, int w, ScalarType dtype, Device device) {
        if (channels <= 0 || channels % 4 != 0 || h <= 0 || w <= 0) {
            throw new IllegalArgumentException("sine position encoding: channels must be a positive multiple of 4 and "
                    + "the map non-empty, got channels " + channels + ", " + h + "x" + w);
        }
        return Scoped.tensor(() -> {
            int f = channels / 2;
            Tensor rows = axis(h, f), cols = axis(w, f);
            Tensor pos = Nn.cat(2, rows.view(h, 1, f).expand(h, w, f), cols.view(1, w, f).expand(h, w, f));
            return pos.permute(2, 0, 1).unsqueeze(0).contiguous().to(device, dtype);
        });
    }

    /** (n, f): the encoding of positions 1..n along one axis. */
    private static Tensor axis(int n, int f) {
        double[] invFreq = new double[f];
        byte[] even = new byte[f];
        for (int c = 0; c < f; c++) {
            invFreq[c] = 1.0 / Math.pow(TEMPERATURE, 2.0 * (c / 2) / f);
            even[c] = (byte) (c % 2 == 0 ? 1 : 0);
        }
        double[] p = new double[n];
        for (int i = 0; i < n; i++) {
            p[i] = (i + 1) / (n + EPS) * 2 * Math.PI;
        }
        Tensor arg = Torch.fromDoubles(p, n, 1).mul(Torch.fromDoubles(invFreq, 1, f));
        Tensor isEven = Torch.fromBytes(even, 1, f).to(Devices.cpu(), ScalarType.Bool);
        return torch.where(isEven, arg.sin(), arg.cos());
    }
}
