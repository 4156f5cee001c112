package dev.sa2va.kernels;

/** Element-type codes understood by the native kernels (mirror of {@code sa2va::DType}). */
public final class DType {
    public static final int F32 = 0;
    public static final int F16 = 1;
    public static final int BF16 = 2;
    public static final int U8 = 3;
    public static final int I64 = 4;
    public static final int F64 = 5;
    public static final int I32 = 6;

    private DType() {
    }
}
