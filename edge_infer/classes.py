"""The ten Fashion-MNIST classes, in label order."""

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
NUM_CLASSES = len(CLASS_NAMES)
FOOTWEAR = (5, 7, 9)  # Sandal, Sneaker, Ankle boot
IMAGE_SIZE = 28
