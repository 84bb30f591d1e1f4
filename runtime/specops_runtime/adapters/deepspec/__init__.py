"""DeepSpec (deepseek-ai/DeepSpec at a pinned commit) driven through its own scripts."""
