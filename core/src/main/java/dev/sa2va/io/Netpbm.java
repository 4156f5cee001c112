package dev.sa2va.io;

import java.awt.image.BufferedImage;
import java.io.IOException;

/** Decoder for the Netpbm formats P2/P5 (gray) and P3/P6 (RGB), 8 or 16 bits; ImageIO has none. */
final class Netpbm {
    private Netpbm() {
    }

    static BufferedImage decode(byte[] b, String name) throws IOException {
        int[] pos = {2};
        char kind = (char) b[1];
        if (kind == '1' || kind == '4') {
            throw new IOException(name + ": PBM bitmaps (P1/P4) are not supported, only PGM/PPM");
        }
        int w = nextInt(b, pos, name), h = nextInt(b, pos, name), max = nextInt(b, pos, name);
        if (w <= 0 || h <= 0 || max <= 0 || max > 65535) {
            throw new IOException(name + ": bad Netpbm header (width " + w + ", height " + h + ", maxval " + max + ")");
        }
        boolean rgb = kind == '3' || kind == '6', binary = kind == '5' || kind == '6';
        int channels = rgb ? 3 : 1, bytesPer = max > 255 ? 2 : 1;
        if (binary) {
            pos[0]++; // exactly one whitespace byte separates maxval from binary data
        }
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        int[] row = new int[w];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int[] c = new int[3];
                for (int k = 0; k < channels; k++) {
                    int v;
                    if (binary) {
                        int at = pos[0];
                        if (at + bytesPer > b.length) {
                            throw new IOException(name + ": truncated Netpbm data at pixel (" + x + ", " + y + ")");
                        }
                        v = bytesPer == 2 ? ((b[at] & 0xff) << 8) | (b[at + 1] & 0xff) : b[at] & 0xff;
                        pos[0] += bytesPer;
                    } else {
                        v = nextInt(b, pos, name);
                    }
                    c[k] = (int) Math.round(v * 255.0 / max);
                }
                if (!rgb) {
                    c[1] = c[0];
                    c[2] = c[0];
                }
                row[x] = (c[0] << 16) | (c[1] << 8) | c[2];
            }
            img.setRGB(0, y, w, 1, row, 0, w);
        }
        return img;
    }

    private static int nextInt(byte[] b, int[] pos, String name) throws IOException {
        int i = pos[0];
        while (i < b.length) {
            if (b[i] == '#') {
                while (i < b.length && b[i] != '\n') {
                    i++;
                }
            } else if (Character.isWhitespace(b[i])) {
                i++;
            } else {
                break;
            }
        }
        int start = i;
        long v = 0;
        while (i < b.length && b[i] >= '0' && b[i] <= '9') {
            v = v * 10 + (b[i] - '0');
            if (v > Integer.MAX_VALUE) {
                throw new IOException(name + ": number too large in Netpbm header");
            }
            i++;
        }
        if (i == start) {
            throw new IOException(name + ": malformed or truncated Netpbm file at byte " + i);
        }
        pos[0] = i;
        return (int) v;
    }
}
