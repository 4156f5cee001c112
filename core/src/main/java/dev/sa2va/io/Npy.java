package dev.sa2va.io;

import dev.sa2va.core.Devices;
import dev.sa2va.core.JavaCppDefaults;
import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Writes NumPy {@code .npy} files (format 1.0: magic, a Python-literal header padded to 64 bytes, then the raw
 * C-order little-endian data), so that a Python script with only numpy - no image library - sees exactly the arrays
 * the Java side used. Streaming: the shape is declared first and the data appended a tensor at a time.
 */
public final class Npy implements AutoCloseable {
    static {
        JavaCppDefaults.apply(); // before any JavaCPP class initialises (see JavaCppDefaults)
    }

    private final Path file;
    private final OutputStream out;
    private final ScalarType dtype;
    private final long[] itemShape;
    private final long total;
    private long written;

    /**
     * @param shape the whole array's shape; each {@link #append} adds one or more leading-dimension slices
     */
    public Npy(Path file, ScalarType dtype, long... shape) throws IOException {
        this.file = file;
        this.dtype = dtype;
        if (shape.length == 0) {
            throw new IllegalArgumentException("shape: at least one dimension");
        }
        this.itemShape = Arrays.copyOfRange(shape, 1, shape.length);
        long n = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("shape: negative size in " + Arrays.toString(shape));
            }
            n *= d;
        }
        this.total = n * elementSize(dtype);
        if (file.getParent() != null) {
            Files.createDirectories(file.getParent());
        }
        this.out = new BufferedOutputStream(Files.newOutputStream(file), 1 << 20);
        StringBuilder dims = new StringBuilder();
        for (long d : shape) {
            dims.append(d).append(", ");
        }
        String s = dims.toString();
        if (shape.length > 1) {
            s = s.substring(0, s.length() - 2); // (a, b) - but a 1-tuple needs its comma: (a,)
        } else {
            s = s.substring(0, s.length() - 1);
        }
        StringBuilder h = new StringBuilder("{'descr': '" + descr(dtype) + "', 'fortran_order': False, 'shape': ("
                + s.trim() + "), }");
        while ((10 + h.length() + 1) % 64 != 0) {
            h.append(' ');
        }
        h.append('\n');
        byte[] header = h.toString().getBytes(StandardCharsets.US_ASCII);
        out.write(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0});
        out.write(header.length & 0xff);
        out.write((header.length >> 8) & 0xff);
        out.write(header);
    }

    /** Appends {@code t} (dtype as declared, shape = k slices of the leading dimension). */
    public Npy append(Tensor t) throws IOException {
        TensorCheck.of("npy data", t).dtype(dtype);
        long[] s = TensorCheck.shapeOf(t);
        boolean whole = Arrays.equals(s, itemShape);
        boolean slices = s.length == itemShape.length + 1 && Arrays.equals(Arrays.copyOfRange(s, 1, s.length), itemShape);
        if (!whole && !slices) {
            throw new IllegalArgumentException(file + ": appended shape " + Arrays.toString(s) + " is not one or more "
                    + "slices of shape " + Arrays.toString(itemShape));
        }
        Tensor c = t.to(Devices.cpu(), dtype).contiguous();
        long bytes = c.numel() * elementSize(dtype);
        if (written + bytes > total) {
            throw new IllegalArgumentException(file + ": more data than the declared shape holds");
        }
        byte[] buf = new byte[(int) Math.min(bytes, 1 << 24)];
        BytePointer p = new BytePointer(c.data_ptr()).capacity(bytes);
        for (long off = 0; off < bytes; off += buf.length) {
            int len = (int) Math.min(buf.length, bytes - off);
            p.position(off).get(buf, 0, len);
            out.write(buf, 0, len);
        }
        written += bytes;
        return this;
    }

    /** Writes one whole tensor to {@code file}. */
    public static void write(Path file, Tensor t) throws IOException {
        try (Npy n = new Npy(file, Torch.dtype(t), TensorCheck.shapeOf(t))) {
            n.append(t);
        }
    }

    @Override
    public void close() throws IOException {
        out.close();
        if (written != total) {
            throw new IOException(file + ": " + written + " of " + total + " declared bytes were written");
        }
    }

    static String descr(ScalarType st) {
        switch (st) {
            case Byte: return "|u1";
            case Bool: return "|b1";
            case Float: return "<f4";
            case Double: return "<f8";
            case Half: return "<f2";
            case Int: return "<i4";
            case Long: return "<i8";
            default: throw new IllegalArgumentException("no .npy dtype for " + TensorCheck.dtypeName(st)
                    + " (bfloat16 has none in numpy: convert to float32)");
        }
    }

    static int elementSize(ScalarType st) {
        switch (st) {
            case Byte: case Bool: return 1;
            case Half: return 2;
            case Float: case Int: return 4;
            case Double: case Long: return 8;
            default: throw new IllegalArgumentException("no .npy dtype for " + TensorCheck.dtypeName(st));
        }
    }
}
