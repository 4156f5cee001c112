/**
 * Sa2VA end to end: {@link dev.sa2va.model.Sa2VA} loads a model folder (or builds random weights at real
 * dimensions), prepares an image once ({@link dev.sa2va.model.PreparedImage}: MLLM image tokens + SAM2 features),
 * and answers prompts with text and one {@link dev.sa2va.model.SegMask} per [SEG] (logits, probabilities, binary
 * mask, predicted IoU) at the image resolution. {@link dev.sa2va.model.Sa2vaSegmenter} plugs it into the
 * evaluation harness ({@link dev.sa2va.eval.Evaluator}) with out-of-memory retries at fewer tiles.
 */
package dev.sa2va.model;
