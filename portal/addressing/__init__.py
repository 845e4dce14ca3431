"""How Entra ID and Exchange Online treat addresses: pure rules, no Django, no I/O.

The product (Address repair predicts what the cloud will compute) and the lab (its sync engine computes
it) share this one implementation, so a prediction and the lab's outcome cannot drift apart.
"""
