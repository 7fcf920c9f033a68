from village_agent.cli import main

main()
