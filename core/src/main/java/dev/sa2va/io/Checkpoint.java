package dev.sa2va.io;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.sa2va.core.JavaCppDefaults;
import dev.sa2va.core.TensorCheck;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The weights of a model: one {@code .safetensors} file, or a folder with {@code model.safetensors} or with
 * shards listed in {@code model.safetensors.index.json}. Loads tensors by name with the expected shape, casting
 * and placing them, and keeps track of which stored tensors were used, so a model can report unexpected keys.
 *
 * <p>Every failure names the file and the key: a missing key, a shape mismatch (expected vs found), a shard
 * listed in the index but absent, a truncated file or a corrupt header.
 */
public final class Checkpoint implements AutoCloseable {
    static {
        JavaCppDefaults.apply(); // before any JavaCPP class initialises (see JavaCppDefaults)
    }

    private final Path source;
    private final Map<String, SafeTensors> byKey = new LinkedHashMap<>();
    private final List<SafeTensors> files = new ArrayList<>();
    private final Set<String> used = Collections.synchronizedSet(new TreeSet<>());

    private Checkpoint(Path source) {
        this.source = source;
    }

    public static Checkpoint open(Path fileOrDir) throws IOException {
        Checkpoint c = new Checkpoint(fileOrDir);
        try {
            if (Files.isDirectory(fileOrDir)) {
                Path index = fileOrDir.resolve("model.safetensors.index.json");
                Path single = fileOrDir.resolve("model.safetensors");
                if (Files.isRegularFile(index)) {
                    c.openIndex(fileOrDir, index);
                } else if (Files.isRegularFile(single)) {
                    c.add(SafeTensors.open(single));
                } else {
                    try (var s = Files.list(fileOrDir)) {
                        List<Path> all = s.filter(p -> p.toString().endsWith(".safetensors")).sorted().toList();
                        if (all.isEmpty()) {
                            throw new IOException(fileOrDir + ": no model.safetensors, no model.safetensors.index.json and "
                                    + "no *.safetensors file");
                        }
                        for (Path p : all) {
                            c.add(SafeTensors.open(p));
                        }
                    }
                }
            } else {
                c.add(SafeTensors.open(fileOrDir));
            }
        } catch (IOException | RuntimeException e) {
            c.close();
            throw e;
        }
        return c;
    }

    private void openIndex(Path dir, Path index) throws IOException {
        JsonObject map;
        try {
            map = JsonParser.parseString(Files.readString(index)).getAsJsonObject().getAsJsonObject("weight_map");
        } catch (RuntimeException e) {
            throw new IOException(index + ": not a valid safetensors index (" + e.getMessage() + ")", e);
        }
        if (map == null) {
            throw new IOException(index + ": no \"weight_map\"");
        }
        Map<String, SafeTensors> shards = new LinkedHashMap<>();
        for (var e : map.entrySet()) {
            String shard = e.getValue().getAsString();
            SafeTensors st = shards.get(shard);
            if (st == null) {
                Path p = dir.resolve(shard);
                if (!Files.isRegularFile(p)) {
                    throw new IOException(index + ": shard " + shard + " (holding '" + e.getKey() + "') is missing");
                }
                st = SafeTensors.open(p);
                shards.put(shard, st);
                files.add(st);
            }
            if (!st.contains(e.getKey())) {
                throw new IOException(st.file() + ": index lists tensor '" + e.getKey() + "' in this shard but it is absent");
            }
            byKey.put(e.getKey(), st);
        }
    }

    private void add(SafeTensors st) throws IOException {
        files.add(st);
        for (String k : st.keys()) {
            SafeTensors prev = byKey.put(k, st);
            if (prev != null) {
                throw new IOException("tensor '" + k + "' appears in both " + prev.file() + " and " + st.file());
            }
        }
    }

    public Path source() {
        return source;
    }

    public Set<String> keys() {
        return Collections.unmodifiableSet(byKey.keySet());
    }

    public boolean contains(String key) {
        return byKey.containsKey(key);
    }

    /** Stored shape of {@code key}, or null when absent. */
    public long[] shape(String key) {
        SafeTensors st = byKey.get(key);
        try {
            return st == null ? null : st.entry(key).shape();
        } catch (IOException e) {
            return null;
        }
    }

    /**
     * Loads {@code key}, checking its shape ({@code expectedShape}: -1 = any; null = no check), cast to
     * {@code dtype} (null = as stored) on {@code device} (null = CPU).
     */
    public Tensor load(String key, long[] expectedShape, ScalarType dtype, Device device) throws IOException {
        SafeTensors st = byKey.get(key);
        if (st == null) {
            throw new IOException(source + ": missing tensor '" + key + "'"
                    + (expectedShape == null ? "" : " (expected shape " + Arrays.toString(expectedShape) + ")"));
        }
        SafeTensors.Entry e = st.entry(key);
        if (expectedShape != null) {
            boolean ok = e.shape().length == expectedShape.length;
            for (int i = 0; ok && i < expectedShape.length; i++) {
                ok = expectedShape[i] < 0 || expectedShape[i] == e.shape()[i];
            }
            if (!ok) {
                throw new IOException(st.file() + ": tensor '" + key + "' has shape " + Arrays.toString(e.shape())
                        + ", expected " + Arrays.toString(expectedShape).replace("-1", "*"));
            }
        }
        used.add(key);
        return st.get(key, dtype, device);
    }

    /** Loads into an existing tensor (shape, dtype and device of {@code into}); returns {@code into}. */
    public Tensor loadInto(String key, Tensor into) throws IOException {
        Tensor t = load(key, TensorCheck.shapeOf(into), dev.sa2va.core.Torch.dtype(into), into.device());
        try (org.bytedeco.pytorch.NoGradGuard g = new org.bytedeco.pytorch.NoGradGuard()) {
            into.copy_(t);
        }
        t.close();
        return into;
    }

    /** Stored keys under {@code prefix} that no {@link #load} has asked for yet. */
    public List<String> unusedKeys(String prefix) {
        List<String> out = new ArrayList<>();
        for (String k : byKey.keySet()) {
            if (k.startsWith(prefix) && !used.contains(k)) {
                out.add(k);
            }
        }
        Collections.sort(out);
        return out;
    }

    @Override
    public void close() throws IOException {
        IOException first = null;
        for (SafeTensors f : files) {
            try {
                f.close();
            } catch (IOException e) {
                first = first == null ? e : first;
            }
        }
        if (first != null) {
            throw first;
        }
    }
}
