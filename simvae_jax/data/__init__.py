"""Input pipeline: host-side uint8 sources and on-device augmentation."""
