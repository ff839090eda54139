"""From a decoded image to model inputs: stratified crop sampling and the one preprocessing path (views)."""
