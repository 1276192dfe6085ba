/* The frame-ring and detection structs as the camera daemon's shared_memory.h defines them
 * (legacy-stack.md §1 and §2). Prints "name value" lines that core/tests/layout.rs compares with
 * the Rust definitions. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define RING_BUFFER_SIZE 30
#define MAX_FRAME_SIZE (1920 * 1080 * 3 / 2)
#define MAX_DETECTIONS 10

typedef struct {
    uint64_t frame_number;
    struct timespec timestamp;
    int camera_id;
    int width;
    int height;
    int format;
    size_t data_size;
    uint8_t data[MAX_FRAME_SIZE];
} Frame;

typedef struct {
    volatile uint32_t write_index;
    volatile uint32_t frame_interval_ms;
    Frame frames[RING_BUFFER_SIZE];
} SharedFrameBuffer;

typedef struct { int x, y, w, h; } BoundingBox;

typedef struct {
    char class_name[32];
    float confidence;
    BoundingBox bbox;
} Detection;

typedef struct {
    uint64_t frame_number;
    struct timespec timestamp;
    int num_detections;
    Detection detections[MAX_DETECTIONS];
    volatile uint32_t version;
} LatestDetectionResult;

#define SHOW(expr) printf("%s %zu\n", #expr, (size_t)(expr))

int main(void) {
    SHOW(sizeof(struct timespec));
    SHOW(offsetof(Frame, frame_number));
    SHOW(offsetof(Frame, timestamp));
    SHOW(offsetof(Frame, camera_id));
    SHOW(offsetof(Frame, width));
    SHOW(offsetof(Frame, height));
    SHOW(offsetof(Frame, format));
    SHOW(offsetof(Frame, data_size));
    SHOW(offsetof(Frame, data));
    SHOW(sizeof(Frame));
    SHOW(offsetof(SharedFrameBuffer, write_index));
    SHOW(offsetof(SharedFrameBuffer, frame_interval_ms));
    SHOW(offsetof(SharedFrameBuffer, frames));
    SHOW(sizeof(SharedFrameBuffer));
    SHOW(sizeof(BoundingBox));
    SHOW(offsetof(BoundingBox, x));
    SHOW(offsetof(BoundingBox, y));
    SHOW(offsetof(BoundingBox, w));
    SHOW(offsetof(BoundingBox, h));
    SHOW(sizeof(Detection));
    SHOW(offsetof(Detection, class_name));
    SHOW(offsetof(Detection, confidence));
    SHOW(offsetof(Detection, bbox));
    SHOW(sizeof(LatestDetectionResult));
    SHOW(offsetof(LatestDetectionResult, frame_number));
    SHOW(offsetof(LatestDetectionResult, timestamp));
    SHOW(offsetof(LatestDetectionResult, num_detections));
    SHOW(offsetof(LatestDetectionResult, detections));
    SHOW(offsetof(LatestDetectionResult, version));
    return 0;
}
