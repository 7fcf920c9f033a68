from district_node.cli import main

main()
