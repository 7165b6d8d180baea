"""Accounts: users, API tokens and the portal's sign-in pages."""
