import MCP
print("placeholder")
