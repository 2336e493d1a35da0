"""The paper's figures (issue 18): one function per figure, each reading pipeline tables only."""
