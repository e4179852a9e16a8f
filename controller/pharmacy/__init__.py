"""The pharmacy's work on top of the robots: the service every door calls (labels,
verification, release, hand counts), restocking, and label previews."""
