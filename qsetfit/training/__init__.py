"""Training: arguments, the head trainer, SetFit's body tuning, and the setfit-shaped Trainer."""
