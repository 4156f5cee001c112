package dev.sa2va.testing;

import org.bytedeco.pytorch.Context;
import org.bytedeco.pytorch.global.torch;

/**
 * Turns TF32 off for a float32 check on CUDA: cuDNN convolutions use TF32 by default (10-bit mantissa), which
 * alone gives ~1e-3 relative error in the patch embedding, far above the 1e-4 float32 bound. Restores on close.
 */
public final class Tf32 implements AutoCloseable {
    private final boolean cudnn, cublas;

    private Tf32() {
        Context c = torch.globalContext();
        this.cudnn = c.allowTF32CuDNN();
        this.cublas = c.allowTF32CuBLAS();
        c.setAllowTF32CuDNN(false);
        c.setAllowTF32CuBLAS(false);
    }

    public static Tf32 off() {
        return new Tf32();
    }

    /**
     * Turns TF32 off for the rest of the test JVM (cuBLAS, cuDNN and float32 matmul precision "highest"), for GPU test
     * classes whose every test compares float32 against a TF32-free reference.
     */
    public static void offForThisRun() {
        Context c = torch.globalContext();
        c.setAllowTF32CuBLAS(false);
        c.setAllowTF32CuDNN(false);
        c.setFloat32MatmulPrecision("highest");
    }

    @Override
    public void close() {
        Context c = torch.globalContext();
        c.setAllowTF32CuDNN(cudnn);
        c.setAllowTF32CuBLAS(cublas);
    }
}
