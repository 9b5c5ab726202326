"""Small I/O helpers several packages share: HTTP session pools, child processes, Redis clients.

Each module holds one piece of plumbing that used to be copied between two places; it knows
nothing of questions, answers or scores.
"""
