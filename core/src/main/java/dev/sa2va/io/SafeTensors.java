package dev.sa2va.io;

import com.google.gson.Gson;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import dev.sa2va.core.Devices;
import dev.sa2va.core.JavaCppDefaults;
import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Reader and writer of the safetensors format (HF): 8-byte little-endian header length, a JSON header
 * {@code {"name": {"dtype": "BF16", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {...}}},
 * then the raw little-endian data. Tensors are read through memory mapping, one mapping per tensor, and copied
 * out (optionally cast and moved) before the mapping is dropped.
 *
 * <p>The header is validated completely on {@link #open}: a truncated file, a corrupt header, overlapping or
 * out-of-range offsets, or a byte count that does not match dtype and shape is an {@link IOException} naming the
 * file and the tensor. The preset has no safetensors support and Maven Central has no maintained Java reader
 * that hands out libtorch tensors, hence this class (about the size of the format's spec).
 */
public final class SafeTensors implements AutoCloseable {
    static {
        JavaCppDefaults.apply(); // before any JavaCPP class initialises (see JavaCppDefaults)
    }

    /** Description of one stored tensor. */
    public record Entry(String name, String dtype, long[] shape, long begin, long end) {
        public long numel() {
            long n = 1;
            for (long s : shape) {
                n *= s;
            }
            return n;
        }

        @Override
        public String toString() {
            return name + " " + dtype + Arrays.toString(shape);
        }
    }

    private static final long MAX_HEADER = 100L << 20;

    private final Path file;
    private final FileChannel channel;
    private final long dataStart;
    private final Map<String, Entry> entries;
    private final Map<String, String> metadata;

    private SafeTensors(Path file, FileChannel channel, long dataStart, Map<String, Entry> entries,
                        Map<String, String> metadata) {
        this.file = file;
        this.channel = channel;
        this.dataStart = dataStart;
        this.entries = entries;
        this.metadata = metadata;
    }

    /** Opens a .safetensors file and validates its header against the file size. */
    public static SafeTensors open(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new IOException("safetensors file not found: " + file);
        }
        FileChannel ch = FileChannel.open(file, StandardOpenOption.READ);
        try {
            long size = ch.size();
            if (size < 8) {
                throw new IOException(file + ": truncated safetensors file (" + size + " bytes, no header length)");
            }
            ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, lenBuf, 0, file);
            long headerLen = lenBuf.getLong(0);
            if (headerLen <= 0 || headerLen > MAX_HEADER || 8 + headerLen > size) {
                throw new IOException(file + ": corrupt safetensors header length " + headerLen + " (file has " + size
                        + " bytes)");
            }
            ByteBuffer hb = ByteBuffer.allocate((int) headerLen);
            readFully(ch, hb, 8, file);
            String json = new String(hb.array(), StandardCharsets.UTF_8);
            JsonObject root;
            try {
                JsonElement el = JsonParser.parseString(json);
                if (!el.isJsonObject()) {
                    throw new IOException(file + ": corrupt safetensors header (not a JSON object)");
                }
                root = el.getAsJsonObject();
            } catch (JsonParseException e) {
                throw new IOException(file + ": corrupt safetensors header (invalid JSON: " + e.getMessage() + ")", e);
            }
            long dataStart = 8 + headerLen, dataLen = size - dataStart;
            Map<String, Entry> entries = new LinkedHashMap<>();
            Map<String, String> meta = new LinkedHashMap<>();
            for (Map.Entry<String, JsonElement> e : root.entrySet()) {
                String name = e.getKey();
                if (name.equals("__metadata__")) {
                    if (e.getValue().isJsonObject()) {
                        for (Map.Entry<String, JsonElement> m : e.getValue().getAsJsonObject().entrySet()) {
                            meta.put(m.getKey(), m.getValue().isJsonPrimitive() ? m.getValue().getAsString()
                                    : m.getValue().toString());
                        }
                    }
                    continue;
                }
                entries.put(name, parseEntry(file, name, e.getValue(), dataLen));
            }
            return new SafeTensors(file, ch, dataStart, Collections.unmodifiableMap(entries),
                    Collections.unmodifiableMap(meta));
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    private static Entry parseEntry(Path file, String name, JsonElement v, long dataLen) throws IOException {
        try {
            JsonObject o = v.getAsJsonObject();
            String dtype = o.get("dtype").getAsString();
            long[] shape = new Gson().fromJson(o.get("shape"), long[].class);
            long[] off = new Gson().fromJson(o.get("data_offsets"), long[].class);
            if (off == null || off.length != 2 || shape == null) {
                throw new IOException(file + ": tensor '" + name + "' has no valid shape/data_offsets in the header");
            }
            Entry en = new Entry(name, dtype, shape, off[0], off[1]);
            for (long s : shape) {
                if (s < 0) {
                    throw new IOException(file + ": tensor '" + name + "' has a negative dimension " + Arrays.toString(shape));
                }
            }
            if (off[0] < 0 || off[1] < off[0] || off[1] > dataLen) {
                throw new IOException(file + ": tensor '" + name + "' data_offsets " + Arrays.toString(off)
                        + " outside the data section (" + dataLen + " bytes): truncated or corrupt file");
            }
            long expected = en.numel() * elementSize(dtype, file, name);
            if (off[1] - off[0] != expected) {
                throw new IOException(file + ": tensor '" + name + "' " + dtype + Arrays.toString(shape) + " needs "
                        + expected + " bytes but its data_offsets span " + (off[1] - off[0]));
            }
            return en;
        } catch (IllegalStateException | NullPointerException | JsonParseException | UnsupportedOperationException e) {
            throw new IOException(file + ": malformed header entry for tensor '" + name + "': " + v, e);
        }
    }

    static int elementSize(String dtype, Path file, String name) throws IOException {
        switch (dtype) {
            case "F64": case "I64": case "U64": return 8;
            case "F32": case "I32": case "U32": return 4;
            case "F16": case "BF16": case "I16": case "U16": return 2;
            case "I8": case "U8": case "BOOL": case "F8_E4M3": case "F8_E5M2": return 1;
            default: throw new IOException(file + ": tensor '" + name + "' has unknown dtype " + dtype);
        }
    }

    static ScalarType scalarType(String dtype, Path file, String name) throws IOException {
        switch (dtype) {
            case "F64": return ScalarType.Double;
            case "F32": return ScalarType.Float;
            case "F16": return ScalarType.Half;
            case "BF16": return ScalarType.BFloat16;
            case "I64": return ScalarType.Long;
            case "I32": return ScalarType.Int;
            case "I16": return ScalarType.Short;
            case "I8": return ScalarType.Char;
            case "U8": return ScalarType.Byte;
            case "BOOL": return ScalarType.Bool;
            default: throw new IOException(file + ": tensor '" + name + "' has dtype " + dtype + ", not supported here");
        }
    }

    static String dtypeCode(ScalarType st) {
        switch (st) {
            case Double: return "F64";
            case Float: return "F32";
            case Half: return "F16";
            case BFloat16: return "BF16";
            case Long: return "I64";
            case Int: return "I32";
            case Short: return "I16";
            case Char: return "I8";
            case Byte: return "U8";
            case Bool: return "BOOL";
            default: throw new IllegalArgumentException("safetensors cannot store dtype " + TensorCheck.dtypeName(st));
        }
    }

    private static void readFully(FileChannel ch, ByteBuffer buf, long pos, Path file) throws IOException {
        while (buf.hasRemaining()) {
            int n = ch.read(buf, pos + buf.position());
            if (n < 0) {
                throw new IOException(file + ": truncated safetensors file");
            }
        }
    }

    public Path file() {
        return file;
    }

    public Set<String> keys() {
        return entries.keySet();
    }

    public boolean contains(String key) {
        return entries.containsKey(key);
    }

    /** Header entry of {@code key}; IOException naming the file when absent. */
    public Entry entry(String key) throws IOException {
        Entry e = entries.get(key);
        if (e == null) {
            throw new IOException(file + ": no tensor '" + key + "'");
        }
        return e;
    }

    public Map<String, String> metadata() {
        return metadata;
    }

    /** The tensor as stored (dtype and shape of the file), an owned CPU copy. */
    public Tensor get(String key) throws IOException {
        return get(key, null, null);
    }

    /**
     * The tensor cast to {@code dtype} (null: as stored) and placed on {@code device} (null: CPU); always an owned
     * copy, independent of the file mapping.
     */
    public Tensor get(String key, ScalarType dtype, Device device) throws IOException {
        Entry e = entry(key);
        ScalarType stored = scalarType(e.dtype(), file, key);
        long nbytes = e.end() - e.begin();
        Device target = device == null ? Devices.cpu() : device;
        ScalarType want = dtype == null ? stored : dtype;
        if (nbytes == 0) {
            return Torch.empty(want, target, e.shape());
        }
        if (nbytes > Integer.MAX_VALUE) {
            throw new IOException(file + ": tensor '" + key + "' is " + nbytes + " bytes; tensors over 2 GiB are not "
                    + "supported by this reader");
        }
        MappedByteBuffer mb = channel.map(FileChannel.MapMode.READ_ONLY, dataStart + e.begin(), nbytes);
        BytePointer p = new BytePointer(mb);
        Tensor view = torch.from_blob(p, e.shape(), new TensorOptions(stored));
        Tensor out;
        if (want == stored && target.is_cpu()) {
            out = view.clone();
        } else {
            out = view.to(target, want, false, true, new org.bytedeco.pytorch.MemoryFormatOptional());
        }
        view.close();
        p.close();
        return out;
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }

    /**
     * Writes tensors (any device, any contiguity; copied to the CPU first) in name order, with optional
     * string metadata. The file is written to a temporary sibling and moved into place, so a failure never
     * leaves a half-written file under the final name.
     */
    public static void save(Path file, Map<String, Tensor> tensors, Map<String, String> metadata) throws IOException {
        JsonObject header = new JsonObject();
        if (metadata != null && !metadata.isEmpty()) {
            JsonObject m = new JsonObject();
            metadata.forEach(m::addProperty);
            header.add("__metadata__", m);
        }
        String[] names = tensors.keySet().toArray(new String[0]);
        Arrays.sort(names);
        Tensor[] host = new Tensor[names.length];
        long offset = 0;
        for (int i = 0; i < names.length; i++) {
            Tensor t = tensors.get(names[i]);
            TensorCheck.of(names[i], t);
            host[i] = t.to(Devices.cpu(), Torch.dtype(t)).contiguous();
            long nbytes = host[i].numel() * host[i].element_size();
            JsonObject o = new JsonObject();
            o.addProperty("dtype", dtypeCode(Torch.dtype(t)));
            o.add("shape", new Gson().toJsonTree(TensorCheck.shapeOf(t)));
            o.add("data_offsets", new Gson().toJsonTree(new long[] {offset, offset + nbytes}));
            header.add(names[i], o);
            offset += nbytes;
        }
        byte[] json = header.toString().getBytes(StandardCharsets.UTF_8);
        int pad = (8 - json.length % 8) % 8;
        byte[] hdr = Arrays.copyOf(json, json.length + pad);
        Arrays.fill(hdr, json.length, hdr.length, (byte) ' ');
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.WRITE)) {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, hdr.length);
            writeFully(ch, len);
            writeFully(ch, ByteBuffer.wrap(hdr));
            for (Tensor h : host) {
                long n = h.numel() * h.element_size();
                if (n > 0) {
                    writeFully(ch, new BytePointer(h.data_ptr()).capacity(n).asByteBuffer());
                }
            }
        }
        Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING,
                java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }
}
