package dev.sa2va.data;

import java.io.IOException;

/** An image and its mask (or field of view) differ in size; the message names both files and sizes. */
public class SizeMismatchException extends IOException {
    public SizeMismatchException(String message) {
        super(message);
    }
}
