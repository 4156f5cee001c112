package dev.sa2va.mllm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

/** Pixel shuffle against the index formula of sa2va-reference.md §1.2, written out as loops. */
class PixelShuffleTest {
    @Test
    void matchesTheIndexFormula() {
        int t = 2, n = 6, c = 3, m = n / 2;
        Torch.seed(3);
        Tensor vit = Torch.randn(ScalarType.Float, Devices.cpu(), t, 1 + n * n, c);
        float[] x = Torch.toFloats(vit);
        for (String version : new String[] {"v2", "v1"}) {
            float[] want = new float[t * m * m * 4 * c];
            for (int b = 0; b < t; b++) {
                for (int i = 0; i < m; i++) {
                    for (int j = 0; j < m; j++) {
                        // v2 lists blocks row-major (i, j); v1 column-major (j, i)
                        int token = version.equals("v2") ? i * m + j : j * m + i;
                        int[][] src = {{2 * i, 2 * j}, {2 * i, 2 * j + 1}, {2 * i + 1, 2 * j}, {2 * i + 1, 2 * j + 1}};
                        for (int q = 0; q < 4; q++) {
                            int patch = 1 + src[q][0] * n + src[q][1];   // +1: the class token is dropped
                            for (int ch = 0; ch < c; ch++) {
                                want[((b * m * m + token) * 4 + q) * c + ch] = x[(b * (1 + n * n) + patch) * c + ch];
                            }
                        }
                    }
                }
            }
            Tensor got = PixelShuffle.apply(vit, version);
            assertArrayEquals(new long[] {t, m * m, 4 * c}, dev.sa2va.core.TensorCheck.shapeOf(got));
            assertArrayEquals(want, Torch.toFloats(got), version);
        }
    }

    @Test
    void rejectsOddOrNonSquareGrids() {
        Tensor odd = Torch.zeros(ScalarType.Float, Devices.cpu(), 1, 1 + 25, 4);
        assertThrows(IllegalArgumentException.class, () -> PixelShuffle.apply(odd, "v2"));
        Tensor rect = Torch.zeros(ScalarType.Float, Devices.cpu(), 1, 1 + 24, 4);
        assertThrows(IllegalArgumentException.class, () -> PixelShuffle.apply(rect, "v2"));
        Tensor ok = Torch.zeros(ScalarType.Float, Devices.cpu(), 1, 1 + 16, 4);
        assertThrows(IllegalArgumentException.class, () -> PixelShuffle.apply(ok, "v3"));
    }
}
