package dev.sa2va.eval;

import java.io.PrintStream;
import java.util.Locale;

/**
 * A console progress bar with rate and ETA. On a terminal it redraws one line; when the stream is a file or pipe
 * (no console) it prints a line at every 10% and at the end instead, so logs stay readable.
 */
public final class Progress {
    private final PrintStream out;
    private final int total;
    private final boolean redraw;
    private final long start = System.nanoTime();
    private long lastDraw;
    private int lastDecile = -1;

    public Progress(PrintStream out, int total) {
        this(out, total, System.console() != null);
    }

    public Progress(PrintStream out, int total, boolean redraw) {
        this.out = out;
        this.total = total;
        this.redraw = redraw;
    }

    /** Reports that {@code done} of the samples are finished, {@code failed} of them failed. */
    public void update(int done, int failed) {
        if (out == null) {
            return;
        }
        long now = System.nanoTime();
        boolean last = done >= total;
        if (redraw) {
            if (!last && now - lastDraw < 200_000_000L) {
                return;
            }
            lastDraw = now;
            out.print("\r" + line(done, failed, now) + (last ? "\n" : ""));
        } else {
            int decile = total == 0 ? 10 : (int) (10L * done / total);
            if (decile == lastDecile && !last) {
                return;
            }
            if (last && lastDecile == 10) {
                return;
            }
            lastDecile = decile;
            out.println(line(done, failed, now));
        }
        out.flush();
    }

    String line(int done, int failed, long now) {
        double sec = (now - start) / 1e9;
        int width = 30;
        int filled = total == 0 ? width : (int) ((long) width * done / total);
        StringBuilder bar = new StringBuilder("[");
        for (int i = 0; i < width; i++) {
            bar.append(i < filled ? '=' : (i == filled ? '>' : ' '));
        }
        bar.append(']');
        double rate = sec > 0 ? done / sec : 0;
        String eta = done == 0 ? "--:--" : clock(sec / done * (total - done));
        return String.format(Locale.ROOT, "%s %d/%d %3d%%  %.2f samples/s  elapsed %s  ETA %s  failed %d", bar, done,
                total, total == 0 ? 100 : 100L * done / total, rate, clock(sec), eta, failed);
    }

    static String clock(double seconds) {
        long s = Math.round(seconds);
        return s >= 3600 ? String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
                : String.format(Locale.ROOT, "%02d:%02d", s / 60, s % 60);
    }
}
