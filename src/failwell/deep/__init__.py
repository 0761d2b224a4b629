"""Deep-learning failure modes (``failwell[torch]``; attributions need ``captum``)."""
