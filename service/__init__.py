"""Commission engine for network marketing and multi-tier affiliate programs."""
