package dev.sa2va.mllm;

import dev.sa2va.core.TensorCheck;
import org.bytedeco.pytorch.Tensor;

/**
 * InternVL's pixel shuffle with ratio 0.5: the class token is dropped, the square patch grid of side n is cut
 * into 2×2 blocks and each block's four feature vectors are concatenated, giving (n/2)² tokens of 4C channels.
 * Version v2 (InternVL2.5, Sa2VA): token (i, j), row-major, holds
 * {@code x[2i, 2j] | x[2i, 2j+1] | x[2i+1, 2j] | x[2i+1, 2j+1]}. Version v1 (Sa2VAChatConfig's default, older
 * InternVL) leaves the token grid transposed: the same blocks, in column-major order.
 */
public final class PixelShuffle {
    private PixelShuffle() {
    }

    /** {@code vit [T, 1 + n², C]} (class token first) → {@code [T, (n/2)², 4C]}. */
    public static Tensor apply(Tensor vit, String version) {
        TensorCheck.of("vit", vit).dims(3);
        long t = vit.size(0), tokens = vit.size(1) - 1, c = vit.size(2);
        long n = Math.round(Math.sqrt((double) tokens));
        if (n * n != tokens || n % 2 != 0) {
            throw new IllegalArgumentException("vit: expected 1 + n² tokens with n even (a square patch grid), got "
                    + TensorCheck.shapeString(vit));
        }
        long m = n / 2;
        try (Scope s = new Scope()) {
            Tensor x = vit.narrow(1, 1, tokens).reshape(t, m, 2, m, 2, c);
            // dims: (t, i, r, j, q, c) -> v2 (t, i, j, r, q, c); v1 (t, j, i, r, q, c)
            Tensor y;
            if (version.equals("v2")) {
                y = x.permute(0, 1, 3, 2, 4, 5);
            } else if (version.equals("v1")) {
                y = x.permute(0, 3, 1, 2, 4, 5);
            } else {
                throw new IllegalArgumentException("pixel shuffle version '" + version + "' (v1 or v2)");
            }
            return s.keep(y.reshape(t, m * m, 4 * c));
        }
    }
}
