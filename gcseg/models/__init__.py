"""Networks: sparse UNet backbone, transformer query decoder, losses, inference."""
