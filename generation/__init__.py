"""Generation: batches of prompts, the queue that renders them, and the image providers."""
