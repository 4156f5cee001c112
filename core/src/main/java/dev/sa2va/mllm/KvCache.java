package dev.sa2va.mllm;

import dev.sa2va.core.Torch;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Keys and values of every decoder layer, preallocated for {@code capacity} positions ({@code [B, kvHeads,
 * capacity, headDim]} per layer), so decoding writes one row per step instead of concatenating the whole cache.
 * A forward pass writes its rows into every layer at {@link #length()}, then {@link #advance} moves the length.
 */
public final class KvCache implements AutoCloseable {
    private final Tensor[] keys;
    private final Tensor[] values;
    private final long capacity;
    private long length;

    public KvCache(int layers, long batch, int kvHeads, int headDim, long capacity, ScalarType dtype, Device device) {
        if (layers <= 0 || batch <= 0 || capacity <= 0) {
            throw new IllegalArgumentException("KvCache: layers, batch and capacity must be positive, got " + layers
                    + ", " + batch + ", " + capacity);
        }
        this.capacity = capacity;
        keys = new Tensor[layers];
        values = new Tensor[layers];
        for (int i = 0; i < layers; i++) {
            keys[i] = Scope.pin(Torch.empty(dtype, device, batch, kvHeads, capacity, headDim));
            values[i] = Scope.pin(Torch.empty(dtype, device, batch, kvHeads, capacity, headDim));
        }
    }

    /** Positions already cached (the position of the next token). */
    public long length() {
        return length;
    }

    public long capacity() {
        return capacity;
    }

    public long batch() {
        return keys[0].size(0);
    }

    void checkRoom(long n) {
        if (length + n > capacity) {
            throw new IllegalArgumentException("KvCache: " + length + " cached + " + n + " new positions exceed its capacity "
                    + capacity + "; create it with a larger capacity");
        }
    }

    /**
     * Writes {@code k, v [B, kvHeads, n, headDim]} of {@code layer} at the current length and returns the keys and
     * values of all positions up to them (views).
     */
    Tensor[] write(int layer, Tensor k, Tensor v) {
        long n = k.size(2);
        checkRoom(n);
        keys[layer].narrow(2, length, n).copy_(k);
        values[layer].narrow(2, length, n).copy_(v);
        return new Tensor[] {keys[layer].narrow(2, 0, length + n), values[layer].narrow(2, 0, length + n)};
    }

    /** Moves the length after a forward pass wrote {@code n} positions into every layer. */
    void advance(long n) {
        checkRoom(n);
        length += n;
    }

    /**
     * Drops the positions from {@code newLength} on (keeps the memory): e.g. to decode again after the same prompt.
     */
    public void truncate(long newLength) {
        if (newLength < 0 || newLength > length) {
            throw new IllegalArgumentException("KvCache.truncate: length " + newLength + " outside [0, " + length + "]");
        }
        length = newLength;
    }

    /** Forgets everything (keeps the memory). */
    public void clear() {
        length = 0;
    }

    @Override
    public void close() {
        for (int i = 0; i < keys.length; i++) {
            keys[i].close();
            values[i].close();
        }
    }
}
