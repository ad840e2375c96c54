"""How right, how robust and how fast the models are: the corruption suite, scores on the
test set and labelled folders, failure kinds, the HTML report and the speed benchmark.

Not needed to classify: the runtime core (files, preprocess, segment, runtime, classifier) never
imports this package."""
