package dev.sa2va.eval;

import dev.sa2va.core.Devices;
import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import dev.sa2va.data.FieldOfView;
import java.util.Arrays;
import java.util.Locale;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.ScalarOptional;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * A classical baseline segmenter for retinal vessels, so the evaluation pipeline produces meaningful numbers without
 * Sa2VA: Frangi's multiscale vesselness (Frangi et al., MICCAI 1998) on the green channel, all in libtorch ops.
 *
 * <p>At each scale σ the Hessian comes from Gaussian-derivative convolutions (separable, scale-normalised by σ²);
 * with its eigenvalues |λ1| ≤ |λ2|, a dark tube on a brighter background has λ2 > 0, and
 * {@code V = exp(−R_B² / 2β²) · (1 − exp(−S² / 2c²))} with {@code R_B = λ1/λ2}, {@code S = ‖λ‖}, c a fraction of
 * the largest S inside the field of view. The output is the maximum of V over scales, inside an estimated field of
 * view ({@link FieldOfView}) eroded by a few pixels (its rim is a strong false ridge). V lies in [0, 1) but is not a
 * calibrated probability: use {@link ThresholdCalibration} to pick its threshold. The text prompt is ignored.
 */
public final class FrangiVesselness implements Segmenter {
    /** c is {@code cFraction} times this quantile of the Hessian norm S inside the field of view. */
    static final double SCALE_QUANTILE = 0.99;

    /**
     * @param sigmas    scales in pixels for a DRIVE-sized field of view (radius 270 px); scaled by the image's
     * @param beta      sensitivity to blob-likeness R_B (Frangi: 0.5)
     * @param cFraction c as a fraction of the 99th percentile of the Hessian norm S inside the FOV (Frangi: one half
     *                  of the maximum, which here is dominated by the optic disc)
     * @param device    where to compute
     */
    public record Options(double[] sigmas, double beta, double cFraction, Device device) {
        public Options {
            if (sigmas == null || sigmas.length == 0) {
                throw new IllegalArgumentException("sigmas: need at least one scale");
            }
            for (double s : sigmas) {
                if (!(s > 0 && s <= 64)) {
                    throw new IllegalArgumentException("sigmas: each must be in (0, 64], got " + s);
                }
            }
            sigmas = sigmas.clone();
            if (!(beta > 0)) {
                throw new IllegalArgumentException("beta must be > 0, got " + beta);
            }
            if (!(cFraction > 0)) {
                throw new IllegalArgumentException("cFraction must be > 0, got " + cFraction);
            }
            if (device == null) {
                device = Devices.cpu();
            }
        }

        public static Options defaults() {
            return new Options(new double[] {1.0, 1.5, 2.0, 3.0, 4.0}, 0.5, 0.3, Devices.cpu());
        }

        public Options withDevice(Device d) {
            return new Options(sigmas, beta, cFraction, d);
        }
    }

    private final Options o;

    public FrangiVesselness() {
        this(Options.defaults());
    }

    public FrangiVesselness(Options options) {
        this.o = options;
    }

    @Override
    public String name() {
        return String.format(Locale.ROOT, "frangi(sigmas=%s, beta=%.2f, c=%.2f*p99(S), %s)", Arrays.toString(o.sigmas()),
                o.beta(), o.cFraction(), Devices.describe(o.device()));
    }

    @Override
    public Prediction segment(Input input, int level) {
        TensorCheck.of("image", input.image()).dtype(ScalarType.Byte).dims(3);
        Tensor rgb = input.image().to(o.device(), ScalarType.Byte);
        Tensor fov = FieldOfView.estimate(rgb).to(ScalarType.Float);
        double fovPixels = fov.sum().item().toDouble();
        if (fovPixels < 16) {
            fov = Torch.full(1, ScalarType.Float, o.device(), input.height(), input.width());
            fovPixels = input.height() * (double) input.width();
        }
        // FOV radius in pixels, relative to DRIVE's 270 px
        double scale = Math.sqrt(fovPixels / Math.PI) / 270.0;
        Tensor green = rgb.select(2, 1).to(ScalarType.Float).div(Torch.scalar(255.0));
        double meanInside = green.mul(fov).sum().item().toDouble() / fovPixels;
        // outside the FOV: the mean inside, so the aperture's edge is not a ridge
        Tensor img = green.mul(fov).add(fov.neg().add(Torch.scalar(1.0)).mul(Torch.scalar(meanInside)));
        Tensor x = img.reshape(1, 1, input.height(), input.width());
        int erode = Math.max(2, (int) Math.round(4 * scale));
        Tensor inner = erode(fov, erode);
        if (inner.sum().item().toDouble() < 1) {
            inner = fov; // a tiny field of view eroded away: keep its rim response rather than nothing
        }

        Tensor best = null;
        for (double s0 : o.sigmas()) {
            double sigma = s0 * scale;
            Tensor[] h = hessian(x, sigma);
            Tensor dxx = h[0], dyy = h[1], dxy = h[2];
            Tensor tmp = dxx.sub(dyy).pow(Torch.scalar(2.0)).add(dxy.pow(Torch.scalar(2.0)).mul(Torch.scalar(4.0))).sqrt();
            Tensor mu1 = dxx.add(dyy).add(tmp).mul(Torch.scalar(0.5));
            Tensor mu2 = dxx.add(dyy).sub(tmp).mul(Torch.scalar(0.5));
            Tensor swap = mu1.abs().gt(mu2.abs());
            Tensor l1 = torch.where(swap, mu2, mu1), l2 = torch.where(swap, mu1, mu2);
            Tensor s2 = l1.pow(Torch.scalar(2.0)).add(l2.pow(Torch.scalar(2.0)));
            // c from a high percentile of S rather than its maximum: the maximum sits on the optic disc's rim
            Tensor inside = s2.masked_select(inner.gt(Torch.scalar(0.5)));
            long k = Math.max(1, (long) Math.ceil(SCALE_QUANTILE * inside.numel()));
            double sRef = Math.sqrt(inside.kthvalue(k).get0().item().toDouble());
            if (!(sRef > 0)) {
                continue;
            }
            double c = o.cFraction() * sRef;
            Tensor safeL2 = torch.where(l2.abs().lt(Torch.scalar(1e-12)), Torch.full(1e-12, ScalarType.Float,
                    o.device()), l2);
            Tensor rb2 = l1.div(safeL2).pow(Torch.scalar(2.0));
            Tensor v = rb2.div(Torch.scalar(-2 * o.beta() * o.beta())).exp()
                    .mul(s2.div(Torch.scalar(-2 * c * c)).exp().neg().add(Torch.scalar(1.0)));
            v = v.mul(l2.gt(Torch.scalar(0.0)).to(ScalarType.Float)); // vessels are darker than their surround
            best = best == null ? v : best.maximum(v);
        }
        if (best == null) {
            best = Torch.zeros(ScalarType.Float, o.device(), input.height(), input.width());
        }
        return Prediction.probabilities(best.mul(inner).clamp(new ScalarOptional(Torch.scalar(0.0)),
                new ScalarOptional(Torch.scalar(1.0))).contiguous());
    }

    /** {Dxx, Dyy, Dxy} of a {@code [1, 1, H, W]} image, each {@code [H, W]}, times σ². */
    static Tensor[] hessian(Tensor x, double sigma) {
        int r = Math.max(1, (int) Math.ceil(3 * sigma));
        double[] g = new double[2 * r + 1], d1 = new double[2 * r + 1], d2 = new double[2 * r + 1];
        double sum = 0;
        for (int i = -r; i <= r; i++) {
            g[i + r] = Math.exp(-0.5 * i * i / (sigma * sigma));
            sum += g[i + r];
        }
        for (int i = -r; i <= r; i++) {
            g[i + r] /= sum;
            // derivatives of the normalised Gaussian (convolution flips them: conv2d is correlation, hence the sign)
            d1[i + r] = -(-i / (sigma * sigma)) * g[i + r];
            d2[i + r] = (i * (double) i / (sigma * sigma * sigma * sigma) - 1 / (sigma * sigma)) * g[i + r];
        }
        // sampled and truncated, the kernels are off by a few percent at small sigma; fix their moments so that the
        // derivatives of polynomials up to degree 2 come out exact: sum d2 = 0, sum j^2 d2 = 2, sum j d1 = 1
        double m = 0;
        for (double v : d2) {
            m += v;
        }
        double m2 = 0, m1 = 0;
        for (int i = -r; i <= r; i++) {
            d2[i + r] -= m / d2.length;
            m2 += (double) i * i * d2[i + r];
            m1 += i * d1[i + r];
        }
        for (int i = 0; i < d2.length; i++) {
            d2[i] *= 2 / m2;
            d1[i] /= m1;
        }
        Device dev = x.device();
        Tensor padded = torch.pad(x, new long[] {r, r, r, r}, "reflect", new DoubleOptional());
        Tensor gx = row(g, dev), gy = col(g, dev), d1x = row(d1, dev), d1y = col(d1, dev), d2x = row(d2, dev),
                d2y = col(d2, dev);
        double s2 = sigma * sigma;
        long h = x.size(2), w = x.size(3);
        Tensor dxx = conv(conv(padded, d2x), gy).mul(Torch.scalar(s2));
        Tensor dyy = conv(conv(padded, gx), d2y).mul(Torch.scalar(s2));
        Tensor dxy = conv(conv(padded, d1x), d1y).mul(Torch.scalar(s2));
        return new Tensor[] {dxx.reshape(h, w), dyy.reshape(h, w), dxy.reshape(h, w)};
    }

    private static Tensor conv(Tensor x, Tensor k) {
        return torch.conv2d(x, k);
    }

    private static Tensor row(double[] k, Device d) {
        return Torch.fromDoubles(k, 1, 1, 1, k.length).to(d, ScalarType.Float);
    }

    private static Tensor col(double[] k, Device d) {
        return Torch.fromDoubles(k, 1, 1, k.length, 1).to(d, ScalarType.Float);
    }

    /** Binary erosion of a {@code [H, W]} 0/1 float mask by a square of radius r (min-pool as −max-pool(−x)). */
    private static Tensor erode(Tensor mask, int r) {
        Tensor x = mask.reshape(1, 1, mask.size(0), mask.size(1)).neg();
        Tensor p = torch.max_pool2d(x, new long[] {2 * r + 1, 2 * r + 1}, new long[] {1, 1}, new long[] {r, r},
                new long[] {1, 1}, false);
        return p.neg().reshape(mask.size(0), mask.size(1));
    }
}
