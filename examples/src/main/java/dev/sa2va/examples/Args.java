package dev.sa2va.examples;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** Minimal command-line parsing for the examples: positional arguments and {@code --name value} / {@code --flag}. */
final class Args {
    final List<String> positional = new ArrayList<>();
    private final Map<String, String> named = new HashMap<>();

    /** @param flags options that take no value */
    Args(String[] args, Set<String> flags, Set<String> options) {
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.startsWith("--")) {
                String k = a.substring(2);
                if (flags.contains(k)) {
                    named.put(k, "true");
                } else if (options.contains(k)) {
                    if (i + 1 >= args.length) {
                        throw new IllegalArgumentException("--" + k + " needs a value");
                    }
                    named.put(k, args[++i]);
                } else {
                    throw new IllegalArgumentException("unknown option --" + k);
                }
            } else {
                positional.add(a);
            }
        }
    }

    boolean flag(String k) {
        return named.containsKey(k);
    }

    String get(String k, String def) {
        return named.getOrDefault(k, def);
    }

    double number(String k, double def) {
        String v = named.get(k);
        if (v == null) {
            return def;
        }
        try {
            return Double.parseDouble(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + k + ": not a number: " + v);
        }
    }

    int integer(String k, int def) {
        String v = named.get(k);
        if (v == null) {
            return def;
        }
        try {
            return Integer.parseInt(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + k + ": not an integer: " + v);
        }
    }
}
