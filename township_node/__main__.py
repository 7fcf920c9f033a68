from township_node.cli import main

main()
